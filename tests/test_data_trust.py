"""Every CIFAR-10 variant is read right or refused with one line: pickles from Python 2 and 3, bad
arrays, odd images, duplicate members, links that leave a folder, resource bombs, stale caches.
Each source is built for real (pickles, archives, folders); nothing of data.py is mocked.
"""

import gzip
import io
import os
import pickle
import re
import tarfile
import zlib

import numpy as np
import pytest
from conftest import random_images, tar_folder, write_image_folder, write_official_archive
from PIL import Image

from se_attention import data
from se_attention.data import DataError, ensure_prepared, load_npz, prepare, public_source, read_source

ALL = {"train": None, "test": None}
N = 20  # images per official batch in these tests


def batch(data, labels, protocol=4, str_keys=False) -> bytes:
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    return pickle.dumps({key("batch_label"): b"x", key("labels"): labels, key("data"): data,
                         key("filenames"): [b"f"] * len(labels)}, protocol=protocol)


def good_data(n=N, seed=0):
    return random_images(n, seed).transpose(0, 3, 1, 2).reshape(n, -1)


def archive_with(tmp_path, blob: bytes):
    return write_official_archive(tmp_path / "a.tar.gz", per_batch=N, replace={"test_batch": blob})


# 4. Pickles from every Python that wrote CIFAR-10 batches


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("labels_as", ["list", "array"])
def test_python3_batches_at_every_protocol_are_read(tmp_path, protocol, labels_as):
    labels = [i % 10 for i in range(N)]
    blob = batch(good_data(), labels if labels_as == "list" else np.asarray(labels), protocol=protocol)
    if protocol == 2:
        assert b"_codecs" in blob  # Python 3 writes bytes at protocol 2 through _codecs.encode
    if protocol == 5:
        assert b"_frombuffer" in blob  # and numpy arrays at protocol 5 through _frombuffer
    arrays, _ = read_source(archive_with(tmp_path, blob), ALL)
    assert np.array_equal(arrays["test"][0], random_images(N, 0))
    assert arrays["test"][1].tolist() == labels


def test_a_batch_with_str_keys_is_read(tmp_path):
    arrays, _ = read_source(archive_with(tmp_path, batch(good_data(), [1] * N, str_keys=True)), ALL)
    assert arrays["test"][1].tolist() == [1] * N


class Call:
    """A pickle that calls ``func(*args)`` when loaded."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("payload", [
    Call(os.system, "touch PWNED"),
    Call(eval, "__import__('os').system('touch PWNED')"),
    Call(__import__("subprocess").call, ["touch", "PWNED"]),
    Call(np.load, "x.npy", True),
], ids=["os.system", "eval", "subprocess", "numpy.load"])
def test_pickles_that_run_code_are_refused(tmp_path, payload, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="batch 'test_batch' is not a CIFAR-10 batch: UnpicklingError: forbidden"):
        read_source(archive_with(tmp_path, pickle.dumps({b"data": payload, b"labels": []})), ALL)
    assert not (tmp_path / "PWNED").exists()


def test_an_object_array_is_refused(tmp_path):
    data = np.empty((N, 3072), dtype=object)
    with pytest.raises(DataError, match="forbidden object dtype"):
        read_source(archive_with(tmp_path, batch(data, [0] * N, protocol=2)), ALL)


# 5. Arrays are validated, never converted


@pytest.mark.parametrize("data, found", [
    (good_data().astype(np.float64) / 255, "float64 of shape (20, 3072)"),
    (good_data().astype(np.int16) + 200, "int16 of shape (20, 3072)"),
    (good_data()[:, :3000], "uint8 of shape (20, 3000)"),
    (good_data().tolist(), "list"),
])
def test_data_that_is_not_uint8_n_by_3072_is_refused(tmp_path, data, found):
    out = tmp_path / "out" / "cifar10.npz"
    archive = archive_with(tmp_path, batch(data, [0] * N))
    with pytest.raises(DataError, match=re.escape(f"batch 'test_batch' has data of {found}; expected uint8 of shape")):
        prepare(str(archive), archive, out, tmp_path / "out" / "provenance.json", None, ALL)
    assert not (tmp_path / "out").exists()  # nothing written before the check


@pytest.mark.parametrize("labels, message", [
    ([10] + [0] * (N - 1), r"has label 10 \(1 labels out of range\); expected integers from 0 to 9"),
    ([-1] * N, r"has label -1 \(20 labels out of range\)"),
    ([0.0] * N, "has labels of type list; expected a list of integers"),
    ([True] * N, "has labels of type list; expected a list of integers"),
    (np.zeros(N, dtype=np.float32), "has labels of type ndarray"),
])
def test_labels_outside_0_to_9_are_refused(tmp_path, labels, message):
    with pytest.raises(DataError, match=message):
        read_source(archive_with(tmp_path, batch(good_data(), labels)), ALL)


# 6. Image folders


def test_a_16_bit_png_is_refused_not_whitened(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 1, "test": 1})
    Image.fromarray((random_images(1)[0, :, :, 0].astype(np.uint16) * 257)).save(folder / "train/cat/0000.png")
    assert Image.open(folder / "train/cat/0000.png").mode.startswith("I")
    with pytest.raises(DataError, match=r"train/cat/0000.png has pixel mode I;16; expected 8 bits per channel"):
        read_source(folder, ALL)


def test_duplicate_member_names_are_refused(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 1, "test": 1})
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname="cifar10")
    with tarfile.open(archive, "a") as tar:  # a second copy of one member, as `tar -r` appends it
        tar.add(folder / "train/cat/0000.png", arcname="cifar10/train/cat/0000.png")
    with pytest.raises(DataError, match=r"member 'cifar10/train/cat/0000.png' appears twice"):
        read_source(archive, ALL)


def test_a_link_leaving_the_folder_is_refused(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 1, "test": 1})
    outside = tmp_path / "secret.png"
    outside.write_bytes((folder / "train/cat/0000.png").read_bytes())
    (folder / "train/cat/0000.png").unlink()
    (folder / "train/cat/0000.png").symlink_to(outside)
    with pytest.raises(DataError, match=r"refusing 'train/cat/0000.png': a link to .*secret.png, outside the folder"):
        read_source(folder, ALL)


def test_a_link_inside_the_folder_is_followed(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 1, "test": 1})
    (folder / "train/cat/0000.png").unlink()
    (folder / "train/cat/0000.png").symlink_to(folder / "train/dog/0000.png")
    arrays, _ = read_source(folder, ALL)
    assert arrays["train"][0].shape == (10, 32, 32, 3)


def test_an_unbalanced_class_is_named_in_a_warning(tmp_path, capsys):
    folder = write_image_folder(tmp_path / "src", {"train": 6, "test": 1})
    for i in range(1, 6):
        (folder / f"train/frog/{i:04d}.png").unlink()
    read_source(folder, ALL)
    assert "split 'train' is unbalanced: frog 1 images against a median of 6 per class" in capsys.readouterr().err


# 7. A corrupt member outside the subset still stops the run


def test_a_corrupt_image_outside_the_subset_is_found(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 3, "test": 2})
    (folder / "train/ship/0002.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(DataError, match="train/ship/0002.png is not a readable image"):
        read_source(folder, {"train": 1, "test": 1})


def test_a_bad_batch_outside_the_subset_is_found(tmp_path):
    archive = archive_with(tmp_path, batch(good_data(), [11] * N))
    with pytest.raises(DataError, match="has label 11"):
        read_source(archive, {"train": 1, "test": 1})


# 8. Resource bombs: one line naming the member, at the cost of reading its header


def test_a_member_that_inflates_past_the_cap_is_refused_unread(tmp_path):
    archive = tmp_path / "bomb.tar.gz"
    size = 65 << 20  # zeros: 65 MiB compress to about 65 KB
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(DataError, match=r"member 'cifar-10-batches-py/data_batch_1' is 68,157,440 bytes; "
                                        r"expected at most 67,108,864 for a CIFAR-10 batch"):
        read_source(archive, ALL)


def test_members_no_layout_reads_are_never_read(tmp_path):
    folder = write_image_folder(tmp_path / "src", {"train": 1, "test": 1})
    (folder / "huge.bin").write_bytes(bytes(80 << 20))  # beside the layout: skipped, not read
    arrays, _ = read_source(tar_folder(folder, tmp_path / "a.tar.gz"), ALL)
    assert arrays["train"][0].shape == (10, 32, 32, 3)


def test_a_million_empty_members_stop_at_the_count_cap(tmp_path, monkeypatch):
    """A million empty members are 512 MB of headers; the cap stops reading them (scaled down here)."""
    monkeypatch.setattr(data, "MAX_MEMBERS", 1000)
    archive = tmp_path / "many.tar.gz"
    with gzip.open(archive, "wb", compresslevel=1) as gz:  # empty members: one 512-byte header each
        for i in range(1500):
            gz.write(tarfile.TarInfo(f"e/{i}").tobuf())
    with pytest.raises(DataError, match=r"more than 1,000 members; expected CIFAR-10"):
        read_source(archive, ALL)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1500):
        (folder / str(i)).touch()
    with pytest.raises(DataError, match=r"more than 1,000 members"):
        read_source(folder, ALL)


@pytest.mark.parametrize("side, message", [
    (100_000, "declares an image far larger than 32x32"),
    (9000, "has size 9000x9000; expected 32x32"),
])
def test_a_huge_png_is_refused_from_its_header(tmp_path, side, message):
    folder = write_image_folder(tmp_path / "src", {"train": 1, "test": 1})
    png = folder / "train/cat/0000.png"
    blob = bytearray(png.read_bytes())  # the IHDR chunk holds width and height at bytes 16..24
    blob[16:24] = side.to_bytes(4, "big") * 2
    blob[29:33] = zlib.crc32(bytes(blob[12:29])).to_bytes(4, "big")  # a valid header, as a bomb would have
    png.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=f"train/cat/0000.png {message}"):
        read_source(folder, ALL)


def test_a_pickle_of_shared_list_references_is_refused_cheaply(tmp_path):
    nested = [0] * 10
    for _ in range(30):  # 2**30 leaves, 30 small lists: numpy would try to build all of it
        nested = [nested, nested]
    blob = pickle.dumps({b"data": nested, b"labels": nested})
    assert len(blob) < 1000
    with pytest.raises(DataError, match="has data of list; expected uint8"):
        read_source(archive_with(tmp_path, blob), ALL)


# 9. A stale cache is never trained on


def test_a_stale_cache_is_rebuilt_from_the_source(tmp_path):
    archive = write_official_archive(tmp_path / "a.tar.gz", per_batch=N)
    out, provenance = tmp_path / "data" / "cifar10.npz", tmp_path / "provenance.json"
    prepare(str(archive), archive, out, provenance, None, ALL)
    good = load_npz(out)
    stale = {**good, "x_test": np.zeros_like(good["x_test"])}
    np.savez(out, **stale)
    assert ensure_prepared(str(archive), archive, out, provenance, None, ALL) is True
    rebuilt = load_npz(out)
    assert np.array_equal(rebuilt["x_test"], good["x_test"])
    assert ensure_prepared(str(archive), archive, out, provenance, None, ALL) is False  # now current


# 2. What is published about a source


@pytest.mark.parametrize("source, shown", [
    ("https://user:pw@host.example:8443/x/cifar.tar.gz?X-Amz-Signature=abc#frag",
     "https://host.example:8443/x/cifar.tar.gz"),
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
     "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    ("some/local/folder/cifar10-jpeg.tar.gz", "cifar10-jpeg.tar.gz"),
])
def test_public_source_drops_credentials_query_and_local_folders(source, shown):
    assert public_source(source) == shown

