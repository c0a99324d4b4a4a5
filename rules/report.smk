# The data report: each product's piece (vlprep.report), built from its manifest once it is
# written, and filed for Snakemake's own report under its layout and name:
# `snakemake --report report.html <targets>` (report/workflow.rst says how to read it).


rule product_report:
    input:
        header=f"{MANIFESTS}/{{product}}.json",
    output:
        summary=report(
            f"{PRODUCT_REPORTS}/{{product}}/summary.html",
            caption="../report/summary.rst",
            category=report_category,
            subcategory="{product}",
            labels=report_labels("summary"),
        ),
        samples=report(
            f"{PRODUCT_REPORTS}/{{product}}/samples.jpg",
            caption="../report/samples.rst",
            category=report_category,
            subcategory="{product}",
            labels=report_labels("sample images"),
        ),
    log:
        f"{LOGS}/product_report/{{product}}.log",
    wildcard_constraints:
        product="|".join(PRODUCTS),
    # seconds of work reading a bounded sample: not worth a cluster job of its own
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=512,
    params:
        roots=ROOTS,
        about=product_about,
    script:
        "../scripts/product_report.py"
