import hashlib
import io
import threading
import warnings
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_utils.datasets import PhotoFolder, StepBatches, batch_indices, download_coco
from nst_utils.errors import BadInputError

CROP = 16  # pixels; the test photos are 40 x 30


def noise_png(path: Path, seed: int, size: tuple[int, int] = (40, 30)) -> Path:
    """A textured RGB PNG (random pixels from its own generator), so crops differ."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def solid_png(path: Path, value: int) -> Path:
    """A one-colour PNG: every crop of it has mean ``value`` / 255 in the red channel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (value, 0, 0)).save(path)
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for i in range(5):
        noise_png(root / f"p{i}.png", seed=i)
    return root


def make_dataset(root: Path, **kwargs) -> PhotoFolder:
    return PhotoFolder(root, crop_size=CROP, **kwargs)


def red_values(dataset: PhotoFolder, keys: range) -> list[int]:
    return [round(dataset[k][0].mean().item() * 255) for k in keys]


def test_finds_images_nested_and_flat_sorted_case_insensitive(tmp_path):
    noise_png(tmp_path / "b.png", 0)
    noise_png(tmp_path / "a" / "deep" / "c.PNG", 1)
    Image.new("RGB", (40, 30)).save(tmp_path / "a" / "x.JpG", format="JPEG")
    (tmp_path / "notes.txt").write_text("not a photo")
    dataset = make_dataset(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in dataset.files]
    assert names == ["a/deep/c.PNG", "a/x.JpG", "b.png"]
    assert len(dataset) == 3 and dataset.skipped == []


def test_unreadable_files_are_skipped_with_one_warning(photos):
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "sub").mkdir()
    (photos / "sub" / "text.png").write_text("this is no PNG")
    with pytest.warns(UserWarning) as record:
        dataset = make_dataset(photos)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 2 of 7" in message and "empty.jpg" in message and "sub/text.png" in message
    assert sorted(p.name for p in dataset.skipped) == ["empty.jpg", "text.png"]
    assert len(dataset) == 5


def test_missing_empty_or_unreadable_folder_is_an_error(tmp_path):
    with pytest.raises(BadInputError, match="no such folder"):
        make_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match=r"empty: no image files .* download_coco"):
        make_dataset(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(BadInputError, match="none of the 1 image files can be read"):
        make_dataset(tmp_path / "bad")


@pytest.mark.parametrize("kwargs", [{"crop_size": 0}, {"scale": (0.0, 1.0)}, {"scale": (1, 0.5)}])
def test_bad_arguments(photos, kwargs):
    with pytest.raises(BadInputError):
        PhotoFolder(photos, **{"crop_size": CROP, **kwargs})


def test_crops_have_the_shape_and_range(photos):
    dataset = make_dataset(photos)
    for k in (0, 7, 1000):
        crop = dataset[k]
        assert crop.shape == (3, CROP, CROP) and crop.dtype == torch.float32
        assert crop.min() >= 0.0 and crop.max() <= 1.0
    big = PhotoFolder(photos, crop_size=64)  # larger than the photos: upsampled
    assert big[3].shape == (3, 64, 64)


def test_a_sample_is_a_function_of_seed_and_key_only(photos):
    first, second = make_dataset(photos), make_dataset(photos)
    for k in (9, 0, 123, 9):  # any order, any instance
        assert torch.equal(first[k], second[k])
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0], make_dataset(photos, seed=1)[0])
    # photos smaller than 2 * crop_size are cached as they are: the same crops
    assert torch.equal(make_dataset(photos, cache=True)[4], first[4])


def test_every_epoch_visits_every_photo_once_in_a_new_order(tmp_path):
    for i in range(6):
        solid_png(tmp_path / f"s{i}.png", 40 * i + 10)
    dataset = make_dataset(tmp_path)
    epochs = [red_values(dataset, range(e * 6, e * 6 + 6)) for e in range(3)]
    assert all(sorted(epoch) == [10, 50, 90, 130, 170, 210] for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 3


def test_a_file_that_fails_to_decode_is_replaced_by_the_next_one(tmp_path):
    for i in range(4):
        solid_png(tmp_path / f"s{i}.png", 50 * i + 10)
    broken = noise_png(tmp_path / "broken.png", 0, size=(200, 200))
    broken.write_bytes(broken.read_bytes()[:2000])  # the header is intact, the data is not
    dataset = make_dataset(tmp_path)
    assert broken in dataset.files  # it passed the header check
    with pytest.warns(UserWarning, match="broken.png") as record:
        values = red_values(dataset, range(10))
    assert len([w for w in record if w.category is UserWarning]) == 1  # once per file
    assert all(v in (10, 60, 110, 160) for v in values)
    for epoch in (values[:5], values[5:]):  # one photo stands in for the broken one
        assert sorted(set(epoch)) == [10, 60, 110, 160] and len(epoch) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert red_values(make_dataset(tmp_path), range(10)) == values  # deterministic


def take(batches: StepBatches, count: int) -> list[tuple[int, torch.Tensor]]:
    return [item for item, _ in zip(batches, range(count), strict=False)]


def test_batch_indices_split_a_global_batch_into_contiguous_slices():
    assert batch_indices(3, 4) == [12, 13, 14, 15]
    assert batch_indices(3, 4, rank=0, world_size=2) == [12, 13]
    assert batch_indices(3, 4, rank=1, world_size=2) == [14, 15]
    with pytest.raises(BadInputError, match="does not split evenly"):
        batch_indices(0, 5, rank=0, world_size=2)
    with pytest.raises(BadInputError, match="rank 2"):
        batch_indices(0, 4, rank=2, world_size=2)
    with pytest.raises(BadInputError, match="step"):
        batch_indices(-1, 4)


def test_step_batches_resume_and_do_not_touch_the_global_rng(photos):
    dataset = make_dataset(photos)
    rng_before = torch.get_rng_state()
    full = take(StepBatches(dataset, 3), 8)
    resumed = take(StepBatches(make_dataset(photos), 3, start_step=5), 3)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert [step for step, _ in full] == list(range(8))
    assert [step for step, _ in resumed] == [5, 6, 7]
    for (step, batch), (full_step, full_batch) in zip(resumed, full[5:], strict=True):
        assert step == full_step and batch.shape == (3, 3, CROP, CROP)
        assert torch.equal(batch, full_batch)


def test_two_ranks_together_see_the_one_process_batches(photos):
    dataset = make_dataset(photos)
    single = take(StepBatches(dataset, 4), 3)
    rank0 = take(StepBatches(dataset, 4, rank=0, world_size=2), 3)
    rank1 = take(StepBatches(dataset, 4, rank=1, world_size=2), 3)
    for (step, whole), (_, first), (_, second) in zip(single, rank0, rank1, strict=True):
        assert first.shape == (2, 3, CROP, CROP)
        assert torch.equal(torch.cat([first, second]), whole), f"step {step}"


def test_worker_processes_give_the_same_batches(photos):
    in_process = take(StepBatches(make_dataset(photos), 4, start_step=2), 3)
    workers = take(StepBatches(make_dataset(photos), 4, start_step=2, num_workers=2), 3)
    for (step, batch), (worker_step, worker_batch) in zip(in_process, workers, strict=True):
        assert step == worker_step and torch.equal(batch, worker_batch)


# --- download_coco, against a local HTTP server ------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours Range unless ``server.ignore_range``; with
    ``server.drop`` sends half the body and closes the connection."""

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, ranged = 0, self.headers.get("Range")
        if ranged and not server.ignore_range:
            start = int(ranged.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if server.drop else body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files, httpd.requests, httpd.drop, httpd.ignore_range = {}, [], False, False
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/zips"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def coco_zip(split: str = "val2017") -> tuple[bytes, dict[str, bytes]]:
    """A small zip laid out like COCO's (``split/NNN.png``) and its files' contents."""
    contents = {}
    for i in range(3):
        buffer = io.BytesIO()
        Image.fromarray(np.full((30, 40, 3), 60 * i, dtype=np.uint8)).save(buffer, format="PNG")
        contents[f"{i:012d}.png"] = buffer.getvalue() + bytes(range(256)) * 20  # some bulk
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for name, data in contents.items():
            zf.writestr(f"{split}/{name}", data)
    return archive.getvalue(), contents


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def assert_extracted(folder: Path, contents: dict[str, bytes]) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(contents)
    for name, data in contents.items():
        assert (folder / name).read_bytes() == data
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no zip, .part, temp


def test_download_verifies_extracts_and_a_second_call_does_nothing(tmp_path, server):
    data, contents = coco_zip()
    server.files["/zips/val2017.zip"] = data
    folder = download_coco(tmp_path / "coco", url_base=server.url, md5=md5_of(data))
    assert folder == tmp_path / "coco" / "val2017"
    assert_extracted(folder, contents)
    assert server.requests == [("/zips/val2017.zip", None)]
    assert download_coco(tmp_path / "coco", url_base=server.url, md5=md5_of(data)) == folder
    assert len(server.requests) == 1
    assert len(make_dataset(folder)) == 3


def test_download_resumes_a_partial_file_with_a_range_request(tmp_path, server):
    data, contents = coco_zip()
    server.files["/zips/val2017.zip"] = data
    server.drop = True
    with pytest.raises(BadInputError, match=r"could not download .*run again to resume"):
        download_coco(tmp_path, url_base=server.url, md5=md5_of(data))
    part = tmp_path / "val2017.zip.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data) and part.read_bytes() == data[:kept]
    server.drop = False
    folder = download_coco(tmp_path, url_base=server.url, md5=md5_of(data))
    assert server.requests[-1] == ("/zips/val2017.zip", f"bytes={kept}-")
    assert_extracted(folder, contents)


def test_download_starts_over_when_the_server_ignores_range(tmp_path, server):
    data, contents = coco_zip()
    server.files["/zips/val2017.zip"] = data
    server.ignore_range = True
    (tmp_path / "val2017.zip.part").write_bytes(b"stale bytes from another file")
    folder = download_coco(tmp_path, url_base=server.url, md5=md5_of(data))
    assert server.requests[-1][1] == "bytes=29-"
    assert_extracted(folder, contents)


def test_checksum_mismatch_deletes_the_file(tmp_path, server):
    data, _ = coco_zip()
    server.files["/zips/val2017.zip"] = data
    with pytest.raises(BadInputError, match="checksum mismatch .* deleted. Run again"):
        download_coco(tmp_path, url_base=server.url, md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_download_errors_are_one_line_bad_input_errors(tmp_path, server):
    with pytest.raises(BadInputError, match=r"could not download .*404.*run again"):
        download_coco(tmp_path, "train2014", url_base=server.url)
    with pytest.raises(BadInputError, match="split='val2014'"):
        download_coco(tmp_path, "val2014")
