"""`factorkit compress` and `factorkit topics` (the CLI parses, calls the API, prints)."""

import numpy as np
import pandas as pd
import pytest

from factorkit.cli import main


def test_compress_weight_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    W = (rng.normal(size=(60, 6)) @ rng.normal(size=(6, 50))).astype(np.float32)
    np.savez(tmp_path / "w.npz", weight=W)
    out_file, report = str(tmp_path / "c.safetensors"), str(tmp_path / "rep")
    argv = ["compress", str(tmp_path / "w.npz"), "--energy", "0.999", "--out", out_file]
    code = main([*argv, "--report", report])
    out = capsys.readouterr().out
    assert code == 0
    assert "60x50 at rank 6 (energy>=0.999)" in out
    assert (tmp_path / "c.safetensors").exists() and (tmp_path / "rep" / "report.md").exists()


def test_compress_errors_are_clean(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"nope")
    pytest.importorskip("PIL")
    code = main(["compress", str(tmp_path / "bad.png"), "--rank", "2", "--out", "x.png"])
    err = capsys.readouterr().err
    assert code == 2 and "factorkit compress: error:" in err and "not a readable image" in err
    with pytest.raises(SystemExit):  # exactly one criterion
        main(["compress", "x.npy", "--rank", "2", "--energy", "0.9", "--out", "y.npz"])


def test_topics_on_a_text_file(tmp_path, capsys):
    docs = ["cats purr and meow", "dogs bark loudly", "cats meow at night", "dogs bark and growl"]
    (tmp_path / "corpus.txt").write_text("\n".join(docs) + "\n")
    out_csv = tmp_path / "dt.csv"
    code = main(["topics", str(tmp_path / "corpus.txt"), "--topics", "2", "--top", "2",
                 "--out", str(out_csv)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "topic  0:" in out and "topic  1:" in out
    frame = pd.read_csv(out_csv)
    assert list(frame.columns) == ["document", "topic_0", "topic_1"] and len(frame) == 4
