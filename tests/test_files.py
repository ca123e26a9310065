"""dlimaging.files: the one rule of every file written for a user, and the folder lock."""

import os

import pytest

from dlimaging.errors import InputError
from dlimaging.files import claim_output, folder_lock, write_new


def test_a_given_name_that_is_taken_is_refused_naming_it(tmp_path):
    mine = tmp_path / "cam.png"
    mine.write_bytes(b"mine")
    with pytest.raises(InputError, match=r"--out .*cam.png already exists and was left as it is \(dlimaging never "
                                         r"replaces a file it did not write in this run\). Pass another --out"):
        claim_output(mine)
    with pytest.raises(InputError, match=r"`out` .*digit.png is an input of this run; it is never overwritten"):
        digit = tmp_path / "digit.png"
        digit.write_bytes(b"an input")
        claim_output(digit, option="`out`", inputs=[str(digit)])
    with pytest.raises(InputError, match=r"is a folder, not a file"):
        claim_output(tmp_path)
    assert mine.read_bytes() == b"mine" and claim_output(tmp_path / "new.png") == tmp_path / "new.png"


def test_a_made_up_name_moves_to_the_next_free_one_and_a_run_never_claims_one_twice(tmp_path):
    (tmp_path / "a_restored.png").write_bytes(b"the user's")
    claimed = set()
    first = claim_output(tmp_path / "a_restored.png", given=False, claimed=claimed)
    second = claim_output(tmp_path / "a_restored.png", given=False, claimed=claimed)  # not on disk yet: claimed
    assert (first.name, second.name) == ("a_restored-2.png", "a_restored-3.png")
    with pytest.raises(InputError, match="already exists"):  # a given name that this run claimed already
        claim_output(first, claimed=claimed)


def test_write_new_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    assert write_new(target, lambda tmp: tmp.write_text("ours")) == target
    assert target.read_text() == "ours"
    with pytest.raises(InputError, match=r"out.csv appeared while this run was writing it, and was left as it is"):
        write_new(target, lambda tmp: tmp.write_text("again"))
    assert target.read_text() == "ours"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]  # no temporary file left


def test_the_folder_lock_refuses_a_second_holder(tmp_path):
    with folder_lock(tmp_path / "run", command="dlimaging train"):
        with pytest.raises(InputError, match=rf"in use by dlimaging train \(PID {os.getpid()}"):
            with folder_lock(tmp_path / "run", command="dlimaging train"):
                pass
    assert not (tmp_path / "run").exists()  # the lock alone made it: removed
