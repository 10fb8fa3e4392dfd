"""Faults injected for real: a crash while writing, a connection cut mid-download, a hostile checkpoint."""

import http.server
import os
import threading

import numpy as np
import pytest
import torch

from se_attention import atomic
from se_attention.cnn import build_model
from se_attention.data import DataError, download
from se_attention.probe import load_weights


def test_crash_while_writing_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"acc": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text('{"acc": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert target.read_text() == '{\n  "acc": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_killed_writer_leaves_nothing_under_the_final_name(tmp_path):
    target = tmp_path / "probe.npz"
    pid = os.fork()
    if pid == 0:  # the child dies hard in the middle of writing
        with atomic.atomic_path(target, suffix=".part.npz") as tmp:
            np.savez(tmp, a=np.zeros(10))
            os._exit(9)
    os.waitpid(pid, 0)
    assert not target.exists()


def test_written_files_get_normal_permissions(tmp_path):
    atomic.write_text(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


class CutConnection(http.server.BaseHTTPRequestHandler):
    """Promises 1 MB, sends 1 kB, hangs up."""

    hits = 0

    def do_GET(self):
        CutConnection.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        self.wfile.write(b"x" * 1024)
        self.wfile.flush()
        self.connection.close()

    def log_message(self, *args):
        pass


def test_connection_cut_mid_download_is_retried_then_fails_cleanly(tmp_path, capsys):
    server = http.server.HTTPServer(("127.0.0.1", 0), CutConnection)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz"
    target = tmp_path / "download" / "cifar-10-python.tar.gz"
    try:
        with pytest.raises(DataError, match=r"download failed after 3 attempts"):
            download(url, target, md5=None, retries=3, backoff_s=0.01)
    finally:
        server.shutdown()
    assert CutConnection.hits == 3
    assert "retrying" in capsys.readouterr().err
    assert list(target.parent.iterdir()) == []


class Payload:
    def __reduce__(self):
        return (os.system, ("echo this should never run",))


def test_checkpoint_with_code_is_refused(tmp_path):
    evil = tmp_path / "model.pt"
    state = build_model("cnn").state_dict()
    state["extra"] = Payload()
    torch.save(state, evil)
    with pytest.raises(ValueError, match="refusing to load this checkpoint"):
        load_weights(build_model("cnn"), evil)


def test_plain_weights_load(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(build_model("se").state_dict(), path)
    load_weights(build_model("se"), path)
