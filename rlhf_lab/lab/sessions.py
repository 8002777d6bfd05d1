"""Opening a session: load its model (once), attach its saved adapters, or create it."""
from __future__ import annotations

from dataclasses import asdict

from ..config import ModelConfig, RewardConfig, from_dict
from ..data.session import Session, validate_name
from ..errors import BrokenAdapter, SessionError
from ..modeling import checkpoints
from ..modeling.adapters import POLICY, REWARD, LabModels, load_lab_models
from ..modeling.loading import num_layers
from ..generation.sampling import choose_decoder
from ..runtime import model_thread


def load_model(lab, cfg: ModelConfig | None = None) -> LabModels:
    cfg = cfg or lab.default_model_cfg
    with lab._model_lock:
        if lab.models is None or lab.model_cfg != cfg:
            lab.models = None
            models = model_thread.call(load_lab_models, cfg)
            lab.decode_note = model_thread.call(choose_decoder, models, cfg.fast_decode)
            lab.models, lab.model_cfg = models, cfg
    return lab.models


def create_session(lab, name: str, model_cfg: ModelConfig | None = None, exist_ok: bool = False) -> Session:
    """Create a session; exist_ok opens it instead when it exists, or when another process creates it first."""
    cfg = model_cfg or lab.default_model_cfg
    validate_name(name)
    if not exist_ok and name in lab.list_sessions():
        raise SessionError(f"Session {name!r} already exists; open it instead.")
    lab.require_idle()
    load_model(lab, cfg)  # fail on a bad model before anything is written
    session = Session.create(lab.sessions_dir, name, asdict(cfg), exist_ok=exist_ok)
    load_model(lab, from_dict(ModelConfig, session.read_meta().model))  # a racing creator's model, if it won
    return model_thread.call(attach, lab, session)


def open_session(lab, name: str, create: bool = False, with_model: bool = True) -> Session:
    """Open (or create) a session. with_model=False opens its records only (undo, export): no model loads."""
    validate_name(name)
    lab.require_idle()
    if create and not (lab.sessions_dir / name / "session.json").is_file():
        return create_session(lab, name, exist_ok=True)  # create-or-open: concurrent first calls all succeed
    session = Session.open(lab.sessions_dir, name)
    if not with_model:
        lab.session = session
        return session
    if lab.session is not None and lab.session.root == session.root and lab.models is not None:
        return lab.session
    load_model(lab, from_dict(ModelConfig, session.read_meta().model))
    return model_thread.call(attach, lab, session)


def attach(lab, session: Session) -> Session:
    """Make `session` current: fresh adapters, then whatever the session saved."""
    models = lab.models
    checkpoints.recover_all(session.root / "adapters")  # saves cut between their renames
    version = session.read_meta().policy_version
    models.reset_policy()
    load_saved_reward(lab, session, RewardConfig())
    if version != "base" and not _load_or_set_aside(lab, session, POLICY, session.adapter_dir("policy") / version):
        models.reset_policy()
        session.update_meta(policy_version="base")
    models.use(POLICY)
    lab.session = session
    lab.score_cache.clear()
    _, lab.warnings = session.rankings()
    return session


def load_saved_reward(lab, session: Session, fresh: RewardConfig) -> None:
    """The session's saved reward adapter in memory, or a fresh one of `fresh`'s shape if none is saved."""
    models, folder = lab.models, session.adapter_dir("reward")
    if not (folder.exists() and _load_or_set_aside(lab, session, REWARD, folder)):
        models.reset_reward_adapter(fresh.lora_r, fresh.lora_layers, fresh.readout, seed=fresh.seed)


def _load_or_set_aside(lab, session: Session, adapter: str, folder) -> bool:
    """Load a saved adapter; a missing or unreadable file is reported and its folder moved aside, and the
    session goes on as if that adapter had never been trained."""
    try:
        checkpoints.check_readable(folder)
        if adapter == REWARD:
            lab.models.reset_reward_adapter(*checkpoints.adapter_shape(folder, num_layers(lab.models.base_model)),
                                            readout=checkpoints.readout_of(folder))
        checkpoints.load_adapter(lab.models, adapter, folder)
        return True
    except BrokenAdapter as err:
        aside = checkpoints.set_aside(folder) if folder.exists() else None
        session.notices.append(f"{err}: the session goes on without that {adapter} adapter (as if untrained)"
                               + (f"; the broken folder was moved to {aside} for inspection." if aside else "."))
        return False
