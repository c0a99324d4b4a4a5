"""Stand-in for BLIP's `laion_synthetic_filtered_large.json`: one JSON array of caption/url objects.

The bytes are exactly what `json.dump(records, f)` (compact, as served) or
`json.dump(records, f, indent=4)` (pretty, as MiniGPT-4's `download_json.py` re-dumps it) would
write (except that some URLs escape their slashes as `\\/`, valid JSON that `json.dump` never
writes), so converters can be checked against the seed's `json.load`. The captions look like
BLIP's synthetic ones (short, lower-case English) and the URLs like LAION's (image CDNs, shop
pages, query strings). With `quirks`, about one record in fifty is hostile: tabs, double
quotes, CR/LF and backslashes in captions, emoji, CJK and right-to-left text, a very long
caption, an empty one, and URLs with query strings, fragments, spaces and non-ASCII paths.

Writes stream in batches, so a multi-gigabyte file costs no more memory than a small one.
"""

import json
import random
from pathlib import Path

from vlprep.atomic import staged

BATCH = 4096
QUIRK_RATE = 0.02
POOL = 4096  # distinct plain captions; real BLIP captions repeat a lot too

SUBJECTS = ["a woman", "a man", "a little girl", "two dogs", "a black cat", "a red car"]
SUBJECTS += ["an old house", "a bowl of soup", "a wedding dress", "a pair of shoes", "a logo"]
SUBJECTS += ["a painting", "a group of people", "a mountain", "a living room", "a cake"]
SUBJECTS += ["a close up of a flower", "a map", "a t - shirt", "a kitchen", "a bicycle"]
VERBS = ["standing in", "sitting on", "with", "in front of", "on top of", "next to"]
VERBS += ["holding", "walking down", "is shown in", "hanging on", "made of", "covered in"]
OBJECTS = ["a field", "the street", "a white background", "a table", "the snow", "a beach"]
OBJECTS += ["a wooden floor", "a blue sky", "a city", "a garden", "water", "a black dress"]
OBJECTS += ["the words happy birthday", "a christmas tree", "flowers", "a large window"]
TAILS = ["", "", "", " at night", " in the sun", " with a smile", " and a dog", " for sale"]

HOSTS = ["i.pinimg.com", "cdn.shopify.com", "images-na.ssl-images-amazon.com"]
HOSTS += ["www.dhresource.com", "i.ebayimg.com", "img.alicdn.com", "media.gettyimages.com"]
HOSTS += ["cdn.wallpapersafari.com", "s3.amazonaws.com", "www.example-shop.de"]
EXTS = [".jpg", ".jpg", ".jpg", ".jpeg", ".png", ".webp", ".JPG"]

QUIRK_CAPTIONS = [
    "a sign that says\t'open'\tin red letters",
    'a poster with the words "just do it"',
    'a man\'s "vintage" jacket, size 12" x 14"',
    "first line\nsecond line",
    "windows line\r\nend and a lone \r carriage return",
    "a back\\slash and a path c:\\temp\\photo.jpg",
    "",
    " leading and trailing spaces ",
    "emoji party 🎉🐶🍕 with a cake 🎂",
    "東京の夜景 night view of tokyo",
    "مدينة في الليل a city at night",
    "שלום עולם with mixed direction",
    "naïve café crème brûlée — déjà vu",
    "zero\u200bwidth and non\u00a0breaking and line\u2028separator",
    "control \u0001 char and del \u007f",
    'everything: tab\t quote" newline\n cr\r backslash\\ emoji 🐍',
    'a caption with }, {"caption": "fake", "url": "x"} inside',
    "ends with a backslash \\",
]


def _plain_caption(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}"


def _url_parts(rng: random.Random, url_host: str | None) -> tuple[str, str]:
    """(prefix, suffix) of a URL; the record's index goes between them to make it unique."""
    ext = rng.choice(EXTS)
    if url_host is not None:
        return f"{url_host.rstrip('/')}/img/", ext
    host = rng.choice(HOSTS)
    a, b = rng.getrandbits(32), rng.getrandbits(16)
    if host == "i.pinimg.com":
        h = f"{a:08x}{b:04x}"
        return f"https://{host}/originals/{h[:2]}/{h[2:4]}/{h[4:6]}/{h}", ext
    if host == "cdn.shopify.com":
        return f"https://{host}/s/files/1/{b:04d}/{a:08d}/products/IMG_", f"{ext}?v={a}"
    return f"http://{host}/images/{b % 997}/{a:x}-", ext


def _url(rng: random.Random, index: int, url_host: str | None) -> str:
    prefix, suffix = _url_parts(rng, url_host)
    return f"{prefix}{index:09d}{suffix}"


def _quirk_url(rng: random.Random, index: int, url_host: str | None) -> str:
    base = _url(rng, index, url_host)
    kind = rng.randrange(5)
    if kind == 0:
        return f"{base}?width=500&height=500&crop=center&utm_source=x#frag"
    if kind == 1:
        return f"{base}?name=ürün fotoğrafı"
    if kind == 2:
        return f"{base}?q=%E6%9D%B1%E4%BA%AC+%22tokyo%22&lang=ja"
    if kind == 3:
        return base.rsplit("/", 1)[0] + f"/größe/東京_{index}.jpg"
    return f"{base}?s=a b&t=c\td"  # a raw space and an (escaped) tab in the query


def _quirk_caption(rng: random.Random) -> str:
    roll = rng.randrange(len(QUIRK_CAPTIONS) + 10)
    if roll < len(QUIRK_CAPTIONS):
        return QUIRK_CAPTIONS[roll]
    if roll == len(QUIRK_CAPTIONS):  # a very long caption (~5 KB)
        return " ".join(_plain_caption(rng) for _ in range(100))
    return _plain_caption(rng).upper()


def make_blip_json(
    path: Path,
    *,
    rows: int | None = None,
    target_bytes: int | None = None,
    seed: int = 0,
    pretty: bool = False,
    quirks: bool = True,
    ensure_ascii: bool | None = None,
    url_host: str | None = None,
    quirk_rate: float = QUIRK_RATE,
) -> int:
    """Write a BLIP-format JSON array to `path` (atomically); return its number of records.

    Exactly one of `rows` (that many records) or `target_bytes` (records until the file reaches
    at least that size) must be given. `pretty` selects `indent=4`. `ensure_ascii` defaults to
    what each producer used: `\\uXXXX` escapes when pretty (`json.dump`'s default, used by
    `download_json.py`), raw UTF-8 when compact. `url_host` (e.g. `http://127.0.0.1:8000`)
    points every URL at a stand-in image host as `<url_host>/img/<index:09d>.<ext>`.
    `quirk_rate` is the share of hostile records when `quirks` is on.
    Same arguments, same bytes.
    """
    if (rows is None) == (target_bytes is None):
        raise ValueError("give exactly one of rows= or target_bytes=")
    if ensure_ascii is None:
        ensure_ascii = pretty
    path = Path(path)
    rng = random.Random(seed)
    captions = [json.dumps(_plain_caption(rng)) for _ in range(POOL)]
    urls = [_url_parts(rng, url_host) for _ in range(POOL)]
    if pretty:
        head, sep, tail = "[\n    ", ",\n    ", "\n]"
        rec = '{{\n        "caption": {},\n        "url": {}\n    }}'
        cap_key, url_key, end = '{\n        "caption": ', ',\n        "url": "', '"\n    }'
    else:
        head, sep, tail = "[", ", ", "]"
        rec = '{{"caption": {}, "url": {}}}'
        cap_key, url_key, end = '{"caption": ', ', "url": "', '"}'
    written = 0
    count = 0
    with staged(path) as tmp, open(tmp, "wb") as f:
        while rows is None or count < rows:
            if target_bytes is not None and written + len(tail) >= target_bytes:
                break
            n = BATCH if rows is None else min(BATCH, rows - count)
            caps = rng.choices(captions, k=n)
            parts = [
                f"{cap_key}{c}{url_key}{u[0]}{i:09d}{u[1]}{end}"
                for c, u, i in zip(
                    caps, rng.choices(urls, k=n), range(count, count + n), strict=True
                )
            ]
            if quirks:
                for j in [j for j in range(n) if rng.random() < quirk_rate]:
                    caption = json.dumps(_quirk_caption(rng), ensure_ascii=ensure_ascii)
                    url = _quirk_url(rng, count + j, url_host)
                    url = json.dumps(url, ensure_ascii=ensure_ascii)
                    if rng.random() < 0.3:
                        url = url.replace("/", "\\/")  # valid JSON, never written by json.dump
                    parts[j] = rec.format(caption, url)
            count += n
            data = ((sep if written else head) + sep.join(parts)).encode("utf-8")
            f.write(data)
            written += len(data)
        f.write(tail.encode() if count else b"[]")
    return count
