"""The end of a run (vlprep.summary): failed jobs read from Snakemake's main log, the lines of
their own logs that say why, and the summary's lines."""

import pytest

from vlprep.summary import (
    LOG_TAIL_BYTES,
    FailedJob,
    call_after,
    failed_jobs,
    log_tail,
    run_lines,
)

# As Snakemake 9.27 writes a failed job into its main log (checked on a real failing run).
MAIN_LOG = """\
[Mon Nov 30 04:40:53 2026]
localrule fetch_file:
    output: {data}/downloads/dtd/dtd-r1.0.1.tar.gz
    log: {data}/logs/fetch_file/dtd/dtd-r1.0.1.tar.gz.log
    jobid: 9
[Mon Nov 30 04:40:54 2026]
Error in rule fetch_file:
    message: None
    jobid: 9
    output: {data}/downloads/dtd/dtd-r1.0.1.tar.gz
    log: {data}/logs/fetch_file/dtd/dtd-r1.0.1.tar.gz.log (check log file(s) for error details)
Logfile {data}/logs/fetch_file/dtd/dtd-r1.0.1.tar.gz.log:
================================================================================
Error in rule fetch_file:
    message: None
    jobid: 9
    output: {data}/downloads/dtd/dtd-r1.0.1.tar.gz
    log: {data}/logs/fetch_file/dtd/dtd-r1.0.1.tar.gz.log (check log file(s) for error details)
Error in rule mmseg_tree:
    message: None
    jobid: 12
    output: {data}/cosmos/mmseg/ade
    log: {data}/logs/a.log, {data}/logs/b.log (check log file(s) for error details)
Shutting down, this might take some time.
Error in rule lavis_link:
    jobid: 3
"""


def test_failed_jobs_are_read_from_the_main_log_once_each(tmp_path):
    main = tmp_path / "run.snakemake.log"
    main.write_text(MAIN_LOG.format(data="/d"))
    jobs = failed_jobs([str(main)])
    assert jobs == [
        FailedJob(
            "fetch_file",
            "/d/downloads/dtd/dtd-r1.0.1.tar.gz",
            ["/d/logs/fetch_file/dtd/dtd-r1.0.1.tar.gz.log"],
        ),
        FailedJob("mmseg_tree", "/d/cosmos/mmseg/ade", ["/d/logs/a.log", "/d/logs/b.log"]),
        FailedJob("lavis_link", "", []),  # the block the log ends in counts too
    ]
    assert failed_jobs(main) == jobs  # one path, as well as Snakemake's list
    assert failed_jobs(None) == [] and failed_jobs([tmp_path / "gone.log"]) == []


def test_a_log_tail_starts_at_the_error_our_scripts_log(tmp_path):
    log = tmp_path / "job.log"
    log.write_text(
        "04:41:36 INFO vlprep.transfer: dtd: trying http://mirror/dtd.tar.gz\n"
        "04:41:36 ERROR vlprep: dtd: could not download dtd.tar.gz; tried 1 URL(s):\n"
        "  http://mirror/dtd.tar.gz: sha256 mismatch\n"
        "\n"
        "What to do: check the mirrors\n"
        "Or download it by hand:\n"
        "  dtd: save it as /manual/dtd.tar.gz\n"
        "    where: https://example.org/dtd.tar.gz\n"
    )
    assert log_tail(log) == [
        "04:41:36 ERROR vlprep: dtd: could not download dtd.tar.gz; tried 1 URL(s):",
        "  http://mirror/dtd.tar.gz: sha256 mismatch",
        "What to do: check the mirrors",
        "Or download it by hand:",
        "  dtd: save it as /manual/dtd.tar.gz",
    ]


def test_a_log_tail_without_an_error_line_is_its_end_read_from_the_end(tmp_path):
    """A traceback (no ERROR line) shows its last lines; a huge log is read from its end only,
    and a line cut by where the read starts is not shown."""
    log = tmp_path / "job.log"
    filler = "x" * 99 + "\n"
    with open(log, "w") as f:
        f.write(filler * (3 * LOG_TAIL_BYTES // len(filler)))
        f.write("Traceback (most recent call last):\n  File 'a.py'\nValueError: bad\n")
    assert log_tail(log, lines=2) == ["  File 'a.py'", "ValueError: bad"]
    tail = log_tail(log, lines=10_000)
    assert sum(len(line) + 1 for line in tail) <= LOG_TAIL_BYTES
    assert all(line == filler.strip() for line in tail[:-3])
    assert log_tail(tmp_path / "missing.log") == []


def test_the_summary_names_every_kind_of_product_and_failure(tmp_path):
    job_log = tmp_path / "fetch.log"
    job_log.write_text("12:00:00 ERROR vlprep: dtd: sha256 mismatch\n")
    lines = run_lines(
        built=["cosmos_dtd", "coco_valid"],
        up_to_date=["cosmos_cifar10"],
        skipped={"cosmos_cityscapes": "2 file(s) to download by hand first:\n  gtFine: ..."},
        not_built=["cosmos_sun397"],
        failed=[FailedJob("fetch_file", "/d/downloads/sun397.tar.gz", [str(job_log)])],
        report_command="snakemake cosmos --report /d/report.html",
        report_path=tmp_path / "report.html",
    )
    assert lines == [
        "vlprep: what this run did:",
        "  built (2): coco_valid, cosmos_dtd",
        "  already up to date (1): cosmos_cifar10",
        "  SKIPPED cosmos_cityscapes: 2 file(s) to download by hand first (said above); "
        "then run: snakemake cosmos_cityscapes",
        "  NOT BUILT (1): cosmos_sun397: a job they need failed",
        "  FAILED: rule fetch_file, output /d/downloads/sun397.tar.gz",
        f"    log: {job_log}",
        "    | 12:00:00 ERROR vlprep: dtd: sha256 mismatch",
        "  data report: snakemake cosmos --report /d/report.html",
    ]
    (tmp_path / "report.html").write_text("<html/>")
    again = run_lines(
        built=["coco_valid"],
        report_command="snakemake --report x",
        report_path=tmp_path / "report.html",
    )
    assert (
        again[-1] == f"  data report: {tmp_path / 'report.html'} (remake it: snakemake --report x)"
    )


def test_a_failed_job_without_a_log_says_where_to_look_and_an_empty_run_says_nothing():
    lines = run_lines(failed=[FailedJob("lavis_link")])
    assert lines[1:] == [
        "  FAILED: rule lavis_link",
        "    (no log of its own: see Snakemake's messages above)",
    ]
    assert run_lines() == []


class Workflow:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def execute(self, *args, **kwargs):
        if self.fail:
            raise RuntimeError("a job failed")
        return ("done", args, kwargs)


def test_call_after_runs_once_the_call_returned_and_never_fails_it(capsys):
    said = []
    workflow = Workflow()
    call_after(workflow, "execute", lambda: said.append("summary"))
    assert workflow.execute(1, cores=2) == ("done", (1,), {"cores": 2})
    assert said == ["summary"]

    failing = Workflow(fail=True)
    call_after(failing, "execute", lambda: said.append("never"))
    with pytest.raises(RuntimeError, match="a job failed"):
        failing.execute()
    assert said == ["summary"]

    broken = Workflow()
    call_after(broken, "execute", lambda: 1 / 0)
    assert broken.execute()[0] == "done"
    assert "vlprep: could not summarize the run: ZeroDivisionError" in capsys.readouterr().err
