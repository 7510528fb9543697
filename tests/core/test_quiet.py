"""quiet_third_party: no third-party bars, warnings or log lines inside the block, lorafair's own kept,
everything restored after, and nothing changed with -v (verbose=True)."""

from __future__ import annotations

import logging
import warnings

import pytest

from lorafair.core.quiet import quiet_third_party


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    from conftest import tiny_model

    path = tmp_path_factory.mktemp("quiet") / "bert"
    tiny_model("bert", vocab_size=40, num_labels=2, pad_token_id=0).save_pretrained(str(path))
    return path


def load(path):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(str(path))


def test_loading_weights_bar_is_hidden_inside_and_back_after(tiny_bert_dir, capfd):
    load(tiny_bert_dir)
    assert "Loading weights" in capfd.readouterr().err  # the bar a user saw on the console
    with quiet_third_party():
        load(tiny_bert_dir)
    assert "Loading weights" not in capfd.readouterr().err
    load(tiny_bert_dir)
    assert "Loading weights" in capfd.readouterr().err  # restored
    with quiet_third_party(verbose=True):
        load(tiny_bert_dir)
    assert "Loading weights" in capfd.readouterr().err  # -v: everything shows


def test_lorafair_own_tqdm_bar_stays(capfd):
    from tqdm.auto import tqdm

    with quiet_third_party():
        for _ in tqdm(range(3), desc="frozen base (A)"):
            pass
    assert "frozen base (A)" in capfd.readouterr().err


def test_deprecation_warnings_are_ignored_others_kept():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_third_party():
            warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning)
            warnings.warn("old API", DeprecationWarning)
            warnings.warn("lorafair: something a user must see", UserWarning)
        assert [str(w.message) for w in seen] == ["lorafair: something a user must see"]
        warnings.warn("after the block", FutureWarning)  # filters restored
        with quiet_third_party(verbose=True):
            warnings.warn("verbose", FutureWarning)
    assert [str(w.message) for w in seen][1:] == ["after the block", "verbose"]


def test_third_party_loggers_show_errors_only_lorafair_unchanged():
    from transformers.utils import logging as hf_logging

    hf_logging.get_verbosity()  # transformers' own first-use configuration (WARNING), which the block must outlast
    peft_log, lorafair_log = logging.getLogger("peft.tuners"), logging.getLogger("lorafair.recipes.compare")
    before = logging.getLogger("transformers").level
    lorafair_before = lorafair_log.getEffectiveLevel()
    with quiet_third_party():
        assert not logging.getLogger("transformers.modeling_utils").isEnabledFor(logging.WARNING)
        assert not peft_log.isEnabledFor(logging.WARNING) and peft_log.isEnabledFor(logging.ERROR)
        assert lorafair_log.getEffectiveLevel() == lorafair_before  # lorafair's own logging is untouched
    assert logging.getLogger("transformers").level == before


def test_restored_after_an_exception():
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    with pytest.raises(RuntimeError), quiet_third_party():
        raise RuntimeError("boom")
    assert hf_logging.is_progress_bar_enabled() and logging.getLogger("peft").level == logging.NOTSET


def test_a_whole_comparison_inside_the_block_prints_only_lorafair_bars(llama_setup, tmp_path, capfd):
    """What the lead wraps around `lorafair compare`: no "Loading weights" bar, no peft/transformers
    FutureWarning on the console, lorafair's own pass bars still there."""
    from lorafair.config import CompareConfig
    from lorafair.recipes.compare import run_compare

    cfg = CompareConfig(
        adapter=str(llama_setup.adapter),
        data=str(llama_setup.data),
        variants="B,A",
        bootstrap=0,
        num_samples=16,
        output=str(tmp_path / "out"),
    )
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # show warnings on stderr as a console user would see them
        run_compare(cfg)
        assert "Loading weights" in capfd.readouterr().err  # the noise, without the block
        with quiet_third_party():
            run_compare(cfg)
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "FutureWarning" not in err and "is deprecated" not in err
    assert "LoRA merged (B)" in err  # lorafair's own tqdm bar


def test_quiet_outlasts_transformers_first_use_configuration():
    """In a fresh process transformers sets its logger to WARNING on first use: a load inside the block
    (the CLI enters it before anything imports transformers) must not bring its warnings back."""
    import subprocess
    import sys

    code = (
        "import logging\n"
        "from lorafair.core.quiet import quiet_third_party\n"
        "with quiet_third_party():\n"
        "    from transformers.utils import logging as hf_logging\n"
        "    hf_logging.get_logger('transformers.modeling_utils')\n"
        "    print(logging.getLogger('transformers.modeling_utils').isEnabledFor(logging.WARNING))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
