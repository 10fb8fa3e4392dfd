import io
import json
import pickle
import tarfile

import numpy as np
import pytest
from conftest import official_batch, random_images, tar_folder, write_image_folder, write_official_archive
from PIL import Image

from se_attention import CLASSES
from se_attention.data import (DataError, download, ensure_prepared, file_digest, load_npz, main, prepare,
                                read_source)

ALL = {"train": None, "test": None}


def test_image_folder_png(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 3, "test": 2})
    arrays, info = read_source(folder, ALL)
    x, y = arrays["train"]
    assert x.shape == (30, 32, 32, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [3] * 10
    assert arrays["test"][0].shape == (20, 32, 32, 3)
    assert info == {"layout": "image-folder", "image_formats": [".png"]}
    # PNG is lossless: the first airplane image comes back exactly.
    assert np.array_equal(x[0], random_images(3, seed=0)[0])


def test_image_folder_in_a_tar_gz_with_subset(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 4, "test": 3}, suffix=".jpg")
    archive = tar_folder(folder, tmp_path / "c.tar.gz")
    out, prov = tmp_path / "out" / "cifar10.npz", tmp_path / "out" / "prov.json"
    info = prepare(str(archive), archive, out, prov, md5=None, per_class={"train": 2, "test": 1})
    assert info["totals"] == {"train": 20, "test": 10}
    assert info["jpeg_reencoded"] is True
    assert info["source_md5"] == file_digest(archive)
    assert info["counts"]["train"] == {c: 2 for c in CLASSES}
    assert load_npz(out)["x_train"].shape == (20, 32, 32, 3)


def test_official_layout(tmp_path):
    archive = write_official_archive(tmp_path / "cifar-10-python.tar.gz", per_batch=20)
    arrays, info = read_source(archive, ALL)
    assert info["layout"] == "official-python"
    assert arrays["train"][0].shape == (100, 32, 32, 3)
    assert arrays["test"][0].shape == (20, 32, 32, 3)
    # The official rows are channel-planar (R plane, G plane, B plane); the npz is H x W x C.
    expected = random_images(20, seed=5)[0]
    assert np.array_equal(arrays["test"][0][0], expected)


def test_md5_mismatch_names_both_sums(tmp_path):
    archive = write_official_archive(tmp_path / "a.tar.gz")
    out = tmp_path / "o.npz"
    with pytest.raises(DataError, match=r"md5 mismatch: expected 0{32}, found [0-9a-f]{32}"):
        prepare(str(archive), archive, out, tmp_path / "p.json", md5="0" * 32, per_class=ALL)
    assert not out.exists()


def test_missing_official_batch(tmp_path):
    archive = write_official_archive(tmp_path / "a.tar.gz", drop="data_batch_3")
    with pytest.raises(DataError, match="missing batch file 'data_batch_3'"):
        read_source(archive, ALL)


def test_official_batch_of_wrong_shape(tmp_path):
    bad = pickle.dumps({b"labels": [0, 1], b"data": np.zeros((2, 100), dtype=np.uint8)})
    archive = write_official_archive(tmp_path / "a.tar.gz", replace={"test_batch": bad})
    with pytest.raises(DataError, match=r"'test_batch' has data of uint8 of shape \(2, 100\); expected uint8 of shape \(N, 3072\)"):
        read_source(archive, ALL)


def test_pickled_code_in_a_batch_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    archive = write_official_archive(tmp_path / "a.tar.gz", replace={"data_batch_1": pickle.dumps(Evil())})
    with pytest.raises(DataError, match="forbidden global"):
        read_source(archive, ALL)


def test_missing_and_extra_class(tmp_path):
    classes = list(CLASSES[:-1]) + ["unicorn"]
    folder = write_image_folder(tmp_path / "src", {"train": 1, "test": 1}, classes=classes)
    with pytest.raises(DataError, match=r"missing \['truck'\], unexpected \['unicorn'\]"):
        read_source(folder, ALL)


def test_wrong_image_size(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 1, "test": 1})
    Image.fromarray(random_images(1, size=28)[0]).save(folder / "train" / "cat" / "0000.png")
    with pytest.raises(DataError, match=r"train/cat/0000.png has size 28x28; expected 32x32"):
        read_source(folder, ALL)


def test_file_that_is_not_an_image(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 1, "test": 1})
    (folder / "test" / "dog" / "0000.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="test/dog/0000.png is not a readable image"):
        read_source(folder, ALL)
    (folder / "test" / "dog" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt is not an image"):
        read_source(folder, ALL)


def test_split_without_images(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 1})
    with pytest.raises(DataError, match="split 'test' has no images"):
        read_source(folder, ALL)


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"this is plain text, not an archive" * 10, "not a readable tar archive"),
])
def test_not_an_archive(tmp_path, content, message):
    path = tmp_path / "x.tar.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_source(path, ALL)


def test_truncated_archive(tmp_path):
    archive = write_official_archive(tmp_path / "a.tar.gz", per_batch=200)
    blob = archive.read_bytes()
    archive.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="truncated or another format"):
        read_source(archive, ALL)


@pytest.mark.parametrize("name", ["../evil.png", "/abs/evil.png", "cifar/../../evil.png"])
def test_archive_member_outside_the_root_is_refused(tmp_path, name):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(DataError, match="path leaves the archive root"):
        read_source(archive, ALL)
    assert not (tmp_path.parent / "evil.png").exists()


def test_archive_link_is_refused(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar/train/cat/0.png")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DataError, match="links are not allowed"):
        read_source(archive, ALL)


def test_download_from_url_with_md5(tmp_path):
    archive = write_official_archive(tmp_path / "a.tar.gz")
    target = tmp_path / "dl" / "a.tar.gz"
    assert download(archive.as_uri(), target, md5=file_digest(archive)) == file_digest(archive)
    assert target.read_bytes() == archive.read_bytes()


def test_failed_download_retries_then_fails_cleanly(tmp_path, capsys):
    target = tmp_path / "dl" / "a.tar.gz"
    with pytest.raises(DataError, match="download failed after 3 attempts"):
        download((tmp_path / "missing.tar.gz").as_uri(), target, md5=None, retries=3, backoff_s=0.01)
    assert "attempt 1/3 failed" in capsys.readouterr().err
    assert list(target.parent.iterdir()) == []  # no partial file, under any name


def test_cli_reports_errors_with_exit_code(tmp_path, capsys):
    empty = tmp_path / "e.tar.gz"
    empty.write_bytes(b"")
    code = main(["prepare", "--source", str(empty), "--local", str(empty), "--out", str(tmp_path / "o.npz"),
                 "--provenance", str(tmp_path / "p.json")])
    assert code == 1
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "p.json").exists()


def test_a_missing_npz_is_rebuilt_from_the_source_its_provenance_names(tmp_path):
    archive = write_official_archive(tmp_path / "a.tar.gz")
    out, prov = tmp_path / "data" / "cifar10.npz", tmp_path / "prov.json"
    prepare(str(archive), archive, out, prov, md5=None, per_class=ALL)
    made = load_npz(out)
    out.unlink()  # a fresh clone: committed provenance, no data/
    assert ensure_prepared(str(archive), archive, out, prov, md5=None, per_class=ALL) is True
    assert all(np.array_equal(made[k], v) for k, v in load_npz(out).items())
    mtime = out.stat().st_mtime_ns
    assert ensure_prepared(str(archive), archive, out, prov, md5=None, per_class=ALL) is False
    assert out.stat().st_mtime_ns == mtime  # present: left alone


def test_other_data_than_the_provenance_records_is_refused(tmp_path):
    archive = write_official_archive(tmp_path / "a.tar.gz")
    out, prov = tmp_path / "cifar10.npz", tmp_path / "prov.json"
    prepare(str(archive), archive, out, prov, md5=None, per_class=ALL)
    out.unlink()
    recorded = json.loads(prov.read_text())["arrays_sha256"]
    with pytest.raises(DataError, match=rf"prov\.json: expected arrays_sha256 {recorded}, found [0-9a-f]{{64}}"):
        ensure_prepared(str(archive), archive, out, prov, md5=None, per_class={"train": 2, "test": None})
    assert not out.exists()
    code = main(["ensure", "--source", str(archive), "--local", str(archive), "--out", str(out),
                 "--provenance", str(tmp_path / "missing.json")])
    assert code == 1 and not out.exists()


def test_official_batch_helper_round_trip():
    # Guards the fixture itself: a batch must unpickle to the documented keys.
    batch = pickle.loads(official_batch(3, 0))
    assert batch[b"data"].shape == (3, 3072)
