"""Opening a session: load its model (once), attach its saved adapters, or create it."""
from __future__ import annotations

from dataclasses import asdict

from ..config import ModelConfig, RewardConfig, from_dict
from ..data.session import Session, validate_name
from ..errors import SessionError
from ..modeling import checkpoints
from ..modeling.adapters import POLICY, REWARD, LabModels, load_lab_models
from ..modeling.loading import num_layers
from ..runtime import model_thread


def load_model(lab, cfg: ModelConfig | None = None) -> LabModels:
    cfg = cfg or lab.default_model_cfg
    with lab._model_lock:
        if lab.models is None or lab.model_cfg != cfg:
            lab.models = None
            lab.models = model_thread.call(load_lab_models, cfg)
            lab.model_cfg = cfg
    return lab.models


def create_session(lab, name: str, model_cfg: ModelConfig | None = None) -> Session:
    cfg = model_cfg or lab.default_model_cfg
    validate_name(name)
    if name in lab.list_sessions():
        raise SessionError(f"Session {name!r} already exists; open it instead.")
    lab.require_idle()
    load_model(lab, cfg)  # fail on a bad model before anything is written
    session = Session.create(lab.sessions_dir, name, asdict(cfg))
    return model_thread.call(attach, lab, session)


def open_session(lab, name: str, create: bool = False, with_model: bool = True) -> Session:
    """Open (or create) a session. with_model=False opens its records only (undo, export): no model loads."""
    validate_name(name)
    lab.require_idle()
    if create and name not in lab.list_sessions():
        return create_session(lab, name)
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
    version = session.read_meta().policy_version
    models.reset_policy()
    load_saved_reward(lab, session, RewardConfig())
    if version != "base":
        folder = session.adapter_dir("policy") / version
        if not checkpoints.is_complete(folder):
            raise SessionError(f"Policy version {version} of session {session.name} is missing or incomplete "
                               f"({folder}); set policy_version in session.json to an existing version.")
        checkpoints.load_adapter(models, POLICY, folder)
    models.use(POLICY)
    lab.session = session
    lab.score_cache.clear()
    _, lab.warnings = session.rankings()
    return session


def load_saved_reward(lab, session: Session, fresh: RewardConfig) -> None:
    """The session's saved reward adapter in memory, or a fresh one of `fresh`'s shape if none is saved."""
    models, folder = lab.models, session.adapter_dir("reward")
    if checkpoints.is_complete(folder):
        models.reset_reward_adapter(*checkpoints.adapter_shape(folder, num_layers(models.base_model)))
        checkpoints.load_adapter(models, REWARD, folder)
    else:
        models.reset_reward_adapter(fresh.lora_r, fresh.lora_layers)
