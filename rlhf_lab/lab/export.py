"""The export workflow: the hand-off bundle (exports.bundle), or one preference file in a chosen format.

Neither needs the lab's model: the bundle loads its own unquantized copy of the base. Both hold the job slot,
so no training run replaces an adapter folder while it is read.
"""
from __future__ import annotations

from pathlib import Path

from ..config import ModelConfig, from_dict
from ..data.preference_files import export_trl, write_jsonl_file
from ..errors import ConfigError, ModelLoadError
from ..exports.bundle import SessionContents, write_bundle
from ..exports.conversation import Conversation
from ..exports.files import check_target
from ..exports.hh_rlhf import hh_rows
from ..exports.merged import DTYPES
from ..exports.preferences import preference_rows
from ..data import demonstrations as demos_store
from ..modeling import checkpoints
from ..modeling.loading import resolve_model_path

FILE_FORMATS = ("trl", "trl-plain", "hh-rlhf")


def session_model(lab) -> tuple[ModelConfig, str]:
    """The session's recorded model settings and where that base loads from here."""
    cfg = from_dict(ModelConfig, lab.meta().model)
    return cfg, resolve_model_path(cfg.model)


def contents(lab) -> SessionContents:
    session = lab.require_session()
    meta = session.read_meta()
    cfg, path = session_model(lab)
    checkpoints.recover_all(session.root / "adapters")  # a save cut between its renames, as opening does
    policy = None if meta.policy_version == "base" else session.adapter_dir("policy") / meta.policy_version
    reward = session.adapter_dir("reward") if checkpoints.is_complete(session.adapter_dir("reward")) else None
    if policy is not None:  # the bundle's policy cannot silently become the base: BrokenAdapter, nothing written
        checkpoints.check_readable(policy)  # (an unreadable reward model is left out with a note: exports.models)
    records = lab.rankings()
    demonstrations, skipped = demos_store.read(session.root)
    return SessionContents(name=session.name, records=records, pairs=lab.pairs(), demonstrations=demonstrations,
                           model_cfg=cfg, model_path=path, policy_version=meta.policy_version, policy_folder=policy,
                           reward_folder=reward, notes=tuple(lab.warnings + skipped))


def export_bundle(lab, out: Path | str, dtype: str = "fp32") -> dict:
    """Write the hand-off bundle to `out` (a new or empty folder); returns what export.json records."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    check_target(out)  # before anything loads
    with lab.jobs.inline("export"):
        return write_bundle(contents(lab), Path(out), dtype)


def _conversation(lab) -> Conversation:
    from transformers import AutoTokenizer

    cfg, path = session_model(lab)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"Could not load the tokenizer of {cfg.model!r} to see whether it has a chat "
                             f"template ({str(err).splitlines()[0]}); use --format trl-plain.") from err
    return Conversation(cfg.system_prompt, chat=bool(getattr(tokenizer, "chat_template", None)))


def export_file(lab, path: Path | str, fmt: str = "trl") -> int:
    """One preference file: "trl" (conversational, with margins; plain strings for a model without a chat
    template), "trl-plain" (plain strings, the lab's earlier format) or "hh-rlhf". Returns its rows."""
    if fmt not in FILE_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FILE_FORMATS)}, not {fmt!r}")
    pairs = lab.pairs()
    if fmt == "trl-plain":
        return export_trl(pairs, Path(path))
    rows = preference_rows(pairs, _conversation(lab)) if fmt == "trl" else hh_rows(pairs)
    write_jsonl_file(Path(path), rows)
    return len(rows)
