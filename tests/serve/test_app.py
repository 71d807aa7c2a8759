"""``maskcli serve`` against a real server: uvicorn on a free loopback port, real HTTP clients (httpx), every
endpoint, every refusal, hostile uploads, and two hundred requests at once without an error or a leak."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import os
import signal
import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

import maskcli

from conftest import SAMPLES, needs_u2netp

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from serving import running  # noqa: E402  (serving imports httpx: only once the skips above pass)

pytestmark = [needs_u2netp, pytest.mark.slow]

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("serve-home")
    spool = tmp_path_factory.mktemp("serve-tmp")
    with running(home=home, env={"TMPDIR": str(spool)}) as started:
        started.spool = spool
        yield started


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A server with a token, small limits, a short time limit and CORS for one origin."""
    home = tmp_path_factory.mktemp("strict-home")
    with running("--token", TOKEN, "--max-body", "1", "--max-pixels", "250000", "--max-queue", "2",
                 "--timeout", "0.3", "--cors", "https://shop.example", home=home) as started:
        yield started


def _png(array: np.ndarray) -> bytes:
    return cv2.imencode(".png", array)[1].tobytes()


def _decode(data: bytes, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert image is not None
    return image


def _library_mask(name: str, method: str) -> np.ndarray:
    image = maskcli.read_image(SAMPLES / name)
    return maskcli.segment(image.pixels, method)


def _cli_mask(tmp_path, name: str, *args: str) -> np.ndarray:
    """The mask ``maskcli segment`` writes for a sample: the server must answer the same pixels."""
    from conftest import run_cli

    done = run_cli("segment", str(SAMPLES / name), "-o", str(tmp_path / "cli"), *args)
    assert done.returncode == 0, done.stderr
    return _decode((tmp_path / "cli" / (name.rsplit(".", 1)[0] + ".png")).read_bytes())


# -- the endpoints -----------------------------------------------------------------------------------------------

def test_segment_answers_the_clis_mask_with_its_record(server, tmp_path):
    with server.client() as client:
        answer = client.post("/segment", params={"method": "otsu"}, content=(SAMPLES / "coins.png").read_bytes())
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    mask = _decode(answer.content)
    expected = _cli_mask(tmp_path, "coins.png", "-m", "otsu")
    assert np.array_equal(mask, expected) and 0.2 < (mask > 0).mean() < 0.6
    record = json.loads(answer.headers["x-maskcli-record"])
    assert record["method"] == "otsu" and record["status"] == "written" and record["hard"] is True
    assert record["foreground_fraction"] == pytest.approx(float((expected > 0).mean()), abs=1e-6)


def test_refinement_fields_are_named_as_the_cli_names_them(server):
    with server.client() as client:
        plain = client.post("/segment", params={"method": "otsu"}, content=(SAMPLES / "coins.png").read_bytes())
        refined = client.post("/segment", params=[("method", "otsu"), ("fill-holes", "true"), ("min-size", "400"),
                                                  ("invert", "false")],
                              content=(SAMPLES / "coins.png").read_bytes())
    before, after = _decode(plain.content) > 0, _decode(refined.content) > 0
    _, labels = cv2.connectedComponents(after.astype(np.uint8))
    sizes = np.bincount(labels.ravel())[1:]
    assert sizes.min() >= 400 and after.sum() != before.sum()


def test_apply_with_the_cnn_cuts_out_with_the_models_mask(server):
    photo = SAMPLES / "astronaut.png"
    with server.client() as client:
        answer = client.post("/apply", params={"method": "cnn"}, files={"image": ("astronaut.png", photo.read_bytes())})
    assert answer.status_code == 200, answer.text
    cutout = _decode(answer.content)
    assert cutout.shape == (512, 512, 4)
    expected = _library_mask("astronaut.png", "cnn")
    assert np.abs(cutout[..., 3] / 255.0 - expected).max() <= 2 / 255
    record = json.loads(answer.headers["x-maskcli-record"])
    assert record["model"] == "u2netp" and record["mode"] == "cutout"
    assert answer.headers["content-disposition"] == 'inline; filename="astronaut.png"'


def test_apply_takes_an_uploaded_mask_and_a_mode_with_its_options(server):
    image = _decode((SAMPLES / "chelsea.png").read_bytes(), cv2.IMREAD_COLOR)
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[:, : image.shape[1] // 2] = 255
    with server.client() as client:
        answer = client.post("/apply", params={"mode": "color", "background": "#00ff00", "format": "png"},
                             files={"image": ("chelsea.png", _png(image)), "mask": ("m.png", _png(mask))})
    assert answer.status_code == 200, answer.text
    result = _decode(answer.content, cv2.IMREAD_COLOR)
    assert np.array_equal(result[:, : image.shape[1] // 2], image[:, : image.shape[1] // 2])
    assert (result[:, image.shape[1] // 2:] == (0, 255, 0)).all()


@pytest.mark.parametrize(("how", "magic"), [({"format": "jpg"}, b"\xff\xd8"), ({"format": "tiff"}, b"II*\0"),
                                            ("image/webp", b"RIFF"), ("image/png", b"\x89PNG")])
def test_formats_by_field_or_accept(server, how, magic):
    params = {"method": "otsu", **(how if isinstance(how, dict) else {})}
    headers = {"Accept": how} if isinstance(how, str) else {}
    with server.client() as client:
        answer = client.post("/segment", params=params, headers=headers, content=(SAMPLES / "coins.png").read_bytes())
    assert answer.status_code == 200 and answer.content.startswith(magic)
    mask = _decode(answer.content, cv2.IMREAD_GRAYSCALE)
    expected = _library_mask("coins.png", "otsu")
    assert np.abs(mask / 255.0 - expected).mean() < 0.03  # JPEG's ringing, and the integer path's threshold


def test_json_on_request_carries_the_record_and_the_image(server):
    with server.client() as client:
        answer = client.post("/segment", params={"method": "li", "json": "true"},
                             content=(SAMPLES / "coins.png").read_bytes())
        accepted = client.post("/segment", params={"method": "li"}, headers={"Accept": "application/json"},
                               content=(SAMPLES / "coins.png").read_bytes())
    body = answer.json()
    assert body["record"]["method"] == "li" and body["media_type"] == "image/png"
    assert ((_decode(base64.b64decode(body["image"])) > 0) != (_library_mask("coins.png", "li") > 0)).mean() < 0.01
    assert accepted.json()["record"]["method"] == "li"


def test_listings_and_health(server):
    with server.client() as client:
        methods = client.get("/methods").json()
        modes = client.get("/modes").json()
        models = client.get("/models").json()
        health = client.get("/health")
        page = client.get("/")
    assert {"otsu", "cnn", "grabcut"} <= {m["name"] for m in methods["methods"]}
    otsu = next(m for m in methods["methods"] if m["name"] == "otsu")
    assert {"polarity", "channel"} <= {o["name"] for o in otsu["options"]}
    assert "nuclei" in {p["name"] for p in methods["presets"]}
    assert {"cutout", "color", "blur"} <= {m["name"] for m in modes["modes"]}
    assert "image" not in {m["name"] for m in modes["modes"]}  # it would read a file on the server
    default = next(m for m in models["models"] if m["default"])
    assert default["name"] == "u2netp" and default["available"] is True
    assert health.status_code == 200 and health.json()["status"] == "ready"
    assert page.status_code == 200 and "Drop photos here" in page.text and "/segment" in page.text


def test_it_listens_on_loopback_only_by_default(server):
    listening = set()
    lines = [line for table in ("tcp", "tcp6") for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]]
    for line in lines:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == server.port:
            listening.add(local.rsplit(":", 1)[0])
    assert listening == {"0100007F"}  # 127.0.0.1, and nothing else


# -- refusals ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "error", "option"), [
    ({"method": "otzu"}, "--method: unknown method 'otzu'; did you mean 'otsu'?", "method"),
    ({"min-size": "-1"}, "--min-size: must be a whole number of pixels ≥ 0, got -1", "min-size"),
    ({"param": "block_size=oops", "method": "local"}, "block_size: expected int, got 'oops'", "block-size"),
    ({"format": "gif"}, "--format: unknown format 'gif'; choose png, jpg, webp or tiff", "format"),
    ({"weights": "/etc/passwd"}, "--weights: a request cannot name a file on the server", "weights"),
    ({"model": "u2net"}, "--model: the weights of 'u2net' are not on this server", "model"),
])
def test_a_wrong_option_is_the_clis_message_as_one_json_line(server, params, error, option):
    with server.client() as client:
        answer = client.post("/segment", params=params, content=(SAMPLES / "coins.png").read_bytes())
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/json"
    assert answer.content.count(b"\n") == 1
    assert answer.json()["error"].startswith(error) and answer.json()["option"] == option


def test_apply_option_errors_match_the_cli(server, tmp_path):
    from conftest import run_cli

    with server.client() as client:
        answer = client.post("/apply", params={"mode": "cutout", "format": "jpg", "method": "otsu"},
                             content=(SAMPLES / "coins.png").read_bytes())
        reading = client.post("/apply", params={"mode": "image", "background": "/etc/hostname", "method": "otsu"},
                              content=(SAMPLES / "coins.png").read_bytes())
    cli = run_cli("apply", str(SAMPLES / "coins.png"), "-m", "otsu", "-f", "jpg", "-o", str(tmp_path))
    assert answer.status_code == 400 and cli.returncode == 2
    assert cli.stderr.decode().strip() == f"maskcli: error: {answer.json()['error']}"
    assert reading.status_code == 400 and "cannot name a file" in reading.json()["error"]


def _bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG that declares 900 megapixels in a few dozen bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _hostile() -> dict[str, tuple[bytes, int]]:
    jpeg = (SAMPLES / "retina.jpg").read_bytes()
    rng = np.random.default_rng(3)
    return {
        "truncated jpeg": (jpeg[: len(jpeg) // 2], 400),
        "random bytes": (rng.bytes(5000), 400),
        "empty": (b"", 400),
        "text": (b"hello, this is not an image\n", 400),
        "pdf": (b"%PDF-1.4\n1 0 obj<<>>endobj\n", 400),
        "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', 400),
        "png bomb": (_bomb(), 413),
    }


@pytest.mark.parametrize("name", list(_hostile()))
def test_hostile_uploads_are_refused_with_one_json_line(server, name):
    data, status = _hostile()[name]
    with server.client() as client:
        raw = client.post("/segment", content=data, headers={"Content-Type": "image/png"})
        form = client.post("/apply", params={"method": "otsu"}, files={"image": (name, data)})
        still = client.post("/segment", content=(SAMPLES / "coins.png").read_bytes())
    for answer in (raw, form):
        assert answer.status_code == status, answer.text
        assert set(answer.json()) >= {"error", "status"} and answer.content.count(b"\n") == 1
    assert still.status_code == 200  # the server goes on


def test_a_hostile_mask_is_named_as_the_mask(server):
    with server.client() as client:
        answer = client.post("/apply", files={"image": ("a.png", (SAMPLES / "coins.png").read_bytes()),
                                              "mask": ("m.png", _bomb())})
        wrong_size = client.post("/apply", files={"image": ("a.png", (SAMPLES / "coins.png").read_bytes()),
                                                  "mask": ("m.png", _png(np.zeros((5, 5), np.uint8)))})
    assert answer.status_code == 413 and answer.json()["error"].startswith("mask: image is 30000×30000")
    assert wrong_size.status_code == 400 and "mask is 5×5 but the image is 384×303" in wrong_size.json()["error"]


def _spooled(server) -> list[str]:
    """The server's open files in its temp folder (Linux makes them nameless: they show only as open files)."""
    found = []
    for fd in os.listdir(f"/proc/{server.process.pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{server.process.pid}/fd/{fd}")
            if target.startswith(str(server.spool)):
                found.append(target)
    return found


def test_no_temp_file_outlives_its_request(server):
    rng = np.random.default_rng(0)
    noisy = _png((rng.random((900, 1200, 3)) * 255).astype(np.uint8))  # over the form's 1 MB in-memory part
    assert len(noisy) > 2 << 20
    before = set(server.spool.iterdir())  # what the libraries keep there from their start
    spooled: list[str] = []
    step = 256 << 10

    def upload():
        # The body trickles in, so that the test sees the spooled part while the server holds it.
        for start in range(0, len(body), step):
            yield body[start:start + step]
            if start > (2 << 20) and not spooled:
                time.sleep(0.3)
                spooled.extend(_spooled(server))

    request = httpx.Request("POST", server.url + "/segment", files={"image": ("noisy.png", noisy)})
    body = request.read()
    with server.client() as client:
        answer = client.post("/segment", params={"method": "otsu"}, content=upload(),
                             headers={"Content-Type": request.headers["content-type"]})
    assert answer.status_code == 200
    assert spooled  # the part over 1 MB went to a temp file ...
    assert _spooled(server) == [] and set(server.spool.iterdir()) == before  # ... gone with its request


def test_the_token_guards_the_api_but_not_the_page(strict):
    png = (SAMPLES / "coins.png").read_bytes()
    with strict.client() as client:
        missing = client.post("/segment", content=png)
        wrong = client.post("/segment", content=png, headers={"Authorization": "Bearer nope"})
        right = client.post("/segment", content=png, headers={"Authorization": f"Bearer {TOKEN}"})
        listing = client.get("/methods")
        page, health = client.get("/"), client.get("/health")
    for answer in (missing, wrong, listing):
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in answer.json()["error"]
    assert right.status_code == 200 and page.status_code == 200 and health.status_code == 200


def test_cors_is_off_unless_asked(server, strict):
    origin = {"Origin": "https://shop.example"}
    with server.client() as client:
        off = client.get("/methods", headers=origin)
    with strict.client() as client:
        on = client.options("/segment", headers={**origin, "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization"})
        other = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in off.headers
    assert on.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-origin" not in other.headers


def test_bodies_and_images_over_the_limits_are_413(strict):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = b"\0" * (2 << 20)

    def chunks():
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    with strict.client() as client:
        declared = client.post("/segment", content=big, headers=auth)
        streamed = client.post("/segment", content=chunks(), headers=auth)  # no length: counted as it comes
        pixels = client.post("/segment", content=(SAMPLES / "astronaut.png").read_bytes(), headers=auth)
    assert declared.status_code == 413 and "over the limit of 1,048,576 bytes" in declared.json()["error"]
    assert streamed.status_code == 413 and "over the limit" in streamed.json()["error"]
    assert pixels.status_code == 413 and "262,144 pixels, over the limit of 250,000" in pixels.json()["error"]


def test_a_full_queue_is_503_with_retry_after_and_a_slow_request_504(strict):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    photo = (SAMPLES / "chelsea.png").read_bytes()  # 451×300: under the pixel limit, slow with grabcut

    async def burst():
        async with httpx.AsyncClient(base_url=strict.url, timeout=60, headers=auth) as client:
            return await asyncio.gather(*(client.post("/segment", params={"method": "grabcut", "refine": "grabcut"},
                                                      content=photo) for _ in range(12)))

    answers = asyncio.run(burst())
    statuses = sorted(answer.status_code for answer in answers)
    busy = [answer for answer in answers if answer.status_code == 503]
    slow = [answer for answer in answers if answer.status_code == 504]
    assert busy and slow and set(statuses) <= {503, 504}, statuses
    assert busy[0].headers["retry-after"] == "1" and "busy" in busy[0].json()["error"]
    assert "longer than the limit of 0.3 s" in slow[0].json()["error"]


# -- load ---------------------------------------------------------------------------------------------------------

def _burst(url: str, count: int) -> list[int]:
    coins = (SAMPLES / "coins.png").read_bytes()
    chelsea = (SAMPLES / "chelsea.png").read_bytes()

    async def go():
        limits = httpx.Limits(max_connections=count)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
            calls = [client.post("/segment", params={"method": "otsu"}, content=coins) if i % 4 else
                     client.post("/apply", params={"method": "cnn"}, files={"image": ("c.png", chelsea)})
                     for i in range(count)]
            return [answer.status_code for answer in await asyncio.gather(*calls)]

    return asyncio.run(go())


def test_two_hundred_requests_at_once_without_an_error_or_a_leak(server):
    warm = _burst(server.url, 200)  # warm: the threads and buffers such a load needs
    assert warm == [200] * 200, collections.Counter(warm)
    fds, sizes = server.open_fds(), [server.rss_kib()]
    for _ in range(4):
        loaded = _burst(server.url, 200)
        assert loaded == [200] * 200, collections.Counter(loaded)
        sizes.append(server.rss_kib())
    deadline = time.monotonic() + 15
    while server.open_fds() > fds + 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # the server closes its side of each connection the clients closed, in its own time
    assert server.open_fds() <= fds + 2, (fds, sorted(os.listdir(f"/proc/{server.process.pid}/fd")))
    # A leak grows the process in every burst; without one the allocator's arenas still move it by up to about
    # 20 MiB either way from one burst to the next (seven bursts: +20, -10, -1, -1, +4, +18 MiB), so the smallest
    # of four steps is what must stay flat: 16 MiB in 200 requests is 80 KiB a request.
    steps = [after - before for before, after in zip(sizes, sizes[1:])]
    assert min(steps) < 16 * 1024, sizes
    with server.client() as client:
        health = client.get("/health").json()
    assert health["in_progress"] == 0
    assert max(int(size) for size in health["batches"]) > 1  # concurrent CNN requests went through in batches


def test_sigterm_finishes_the_requests_in_flight_and_exits_0(server):
    answers: list[int] = []

    def slow() -> None:
        with server.client() as client:
            answers.append(client.post("/segment", params={"method": "grabcut", "refine": "grabcut"},
                                       content=(SAMPLES / "astronaut.png").read_bytes()).status_code)

    worker = threading.Thread(target=slow)
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the request is inside
        with server.client() as client:
            if client.get("/health").json()["in_progress"]:
                break
        time.sleep(0.01)
    server.process.send_signal(signal.SIGTERM)
    worker.join(120)
    assert server.process.wait(60) == 0
    assert answers == [200]
