"""Lab: the headless facade. The UI and the CLI call these methods and nothing else."""
from __future__ import annotations

import queue
import random
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import torch

from . import checkpoints, judges, metrics as M, prompts as builtin, worker
from .config import GenerationConfig, ModelConfig, PPOConfig, RewardConfig, from_dict
from .generation import (Stopped, check_prompt, decode_partial, eos_token_ids, generate, require_prompt,
                         tokenize_pairs)
from .jobs import JobRunner, LabBusy
from .models import POLICY, REWARD, LabModels, load_lab_models, num_layers
from .evaluation import evaluate_policy
from .ppo_trainer import new_state, ppo_step
from .preferences import Pair, pairs_from_ranking, read_trl, session_pairs
from .reward_trainer import NotEnoughPairs, count_pairs, groups_from_pairs, train_reward_model
from .session import Session, SessionError, validate_name

DEFAULT_SESSIONS = Path(__file__).resolve().parent.parent / "sessions"


class LabError(RuntimeError):
    """An operation cannot run in the lab's current state; the message says what to do."""


SIMULATE_ROWS = 32  # rows per generate call in simulate (prompts x K)


class Lab:
    def __init__(self, sessions_dir: Path | str = DEFAULT_SESSIONS, model_cfg: ModelConfig | None = None):
        self.sessions_dir = Path(sessions_dir)
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        self.default_model_cfg = model_cfg or ModelConfig()
        self.models: LabModels | None = None
        self.model_cfg: ModelConfig | None = None
        self.session: Session | None = None
        self.jobs = JobRunner()
        self.warnings: list[str] = []
        self._model_lock = threading.Lock()
        self._score_cache: dict[tuple[str, str, str], float] = {}

    # ---- models and sessions ---------------------------------------------------------------------------------
    def load_model(self, cfg: ModelConfig | None = None) -> LabModels:
        cfg = cfg or self.default_model_cfg
        with self._model_lock:
            if self.models is None or self.model_cfg != cfg:
                self.models = None
                self.models = worker.call(load_lab_models, cfg)
                self.model_cfg = cfg
        return self.models

    def list_sessions(self) -> list[str]:
        return Session.list(self.sessions_dir)

    def create_session(self, name: str, model_cfg: ModelConfig | None = None) -> Session:
        cfg = model_cfg or self.default_model_cfg
        validate_name(name)
        if name in self.list_sessions():
            raise SessionError(f"Session {name!r} already exists; open it instead.")
        self._idle_or_raise()
        self.load_model(cfg)  # fail on a bad model before anything is written
        session = Session.create(self.sessions_dir, name, {"model": asdict(cfg)})
        return worker.call(self._attach, session)

    def open_session(self, name: str, create: bool = False) -> Session:
        validate_name(name)
        self._idle_or_raise()
        if create and name not in self.list_sessions():
            return self.create_session(name)
        session = Session.open(self.sessions_dir, name)
        if self.session is not None and self.session.root == session.root and self.models is not None:
            return self.session
        cfg = from_dict(ModelConfig, session.read_meta().get("model"))
        self.load_model(cfg)
        return worker.call(self._attach, session)

    def _attach(self, session: Session) -> Session:
        """Make `session` current: fresh adapters, then whatever the session saved."""
        models = self.models
        meta = session.read_meta()
        models.reset_policy()
        self._load_saved_reward(session, RewardConfig())
        version = meta.get("policy_version", "base")
        if version != "base":
            folder = session.adapter_dir("policy") / version
            if not checkpoints.is_complete(folder):
                raise SessionError(f"Policy version {version} of session {session.name} is missing or incomplete "
                                   f"({folder}); set policy_version in session.json to an existing version.")
            checkpoints.load_adapter(models, POLICY, models.value_head, folder)
        models.use(POLICY)
        self.session = session
        self._score_cache.clear()
        _, self.warnings = session.rankings()
        return session

    def _require_session(self) -> Session:
        if self.session is None:
            raise LabError("No session is open: create or open one first.")
        return self.session

    def _idle_or_raise(self) -> None:
        msg = self.jobs.busy_message()
        if msg:
            raise LabBusy(msg)

    def meta(self) -> dict:
        return self._require_session().read_meta()

    @property
    def has_reward_model(self) -> bool:
        return self.session is not None and checkpoints.is_complete(self.session.adapter_dir("reward"))

    # ---- generation -----------------------------------------------------------------------------------------
    def _validated(self, prompt: str, cfg: GenerationConfig) -> str:
        require_prompt(prompt)  # before loading a model for it
        models = self.models or self.load_model()
        return check_prompt(models.tokenizer, models.peft, prompt, cfg.max_new_tokens)

    def generate(self, prompt: str, cfg: GenerationConfig | None = None) -> dict:
        """K completions of one prompt from the current policy: generate_stream's final event
        ({"texts", "truncated", "scores", "policy", "seed", "prompt"})."""
        final = None
        for event in self.generate_stream(prompt, cfg):
            final = event
        return final

    def generate_stream(self, prompt: str, cfg: GenerationConfig | None = None) -> Iterator[dict]:
        """Yield {"texts": partial texts, "done": False} while sampling, then the final
        {"texts", "done": True, "scores", "policy", "truncated"}."""
        cfg = cfg or GenerationConfig()
        self._require_session()
        prompt = self._validated(prompt, cfg)
        models = self.models
        seed = cfg.seed if cfg.seed is not None else random.randrange(2**31)
        updates: queue.Queue = queue.Queue()
        eos = eos_token_ids(models.tokenizer, models.peft)
        job = self.jobs.acquire("generate")

        def on_step(partial):
            if partial.shape[1] % 4 == 0:  # every 4 tokens is smooth enough and keeps decoding cheap
                updates.put({"texts": decode_partial(models.tokenizer, partial, eos), "done": False})

        def work():
            try:
                models.use(POLICY)
                rollout = generate(models.peft, models.tokenizer, [prompt] * cfg.k, cfg.max_new_tokens,
                                   cfg.temperature, cfg.top_p, seed=seed, on_step=on_step,
                                   stop_event=self.jobs.stop_event)
                updates.put({"texts": rollout.texts, "done": True, "seed": seed,
                             "truncated": rollout.truncated.tolist()})
            except BaseException as err:  # handed to the consumer thread and raised there
                updates.put({"error": err})
            finally:
                self.jobs.release(job)

        worker.submit(work)
        while True:
            event = updates.get()
            if "error" in event:
                raise event["error"]
            if event["done"]:
                event["prompt"] = prompt
                event["policy"] = self.meta().get("policy_version", "base")
                event["scores"] = None
                if self.has_reward_model:
                    try:
                        event["scores"] = self.score(prompt, event["texts"], event["truncated"])
                    except LabBusy:
                        pass  # another job took the model in between: the cards show no score this time
                yield event
                return
            yield event

    # ---- rankings ----------------------------------------------------------------------------------------------
    def rank(self, prompt: str, completions: list[str], ranking=None, verdict: str = "ranked",
             annotator: str = "human", policy: str | None = None, extra: dict | None = None) -> dict:
        """Durably record one ranking event (on disk and fsynced when this returns)."""
        session = self._require_session()
        if not prompt or not str(prompt).strip():
            raise SessionError("The ranking has no prompt.")
        meta = session.read_meta()
        return session.add_ranking(prompt, completions, ranking or [], verdict=verdict, annotator=annotator,
                                   policy=policy or meta.get("policy_version", "base"),
                                   round_=meta.get("round", 0), extra=extra)

    def undo(self) -> dict:
        """Retract the most recent active ranking."""
        session = self._require_session()
        active, _ = session.rankings()
        if not active:
            raise SessionError("Nothing to undo: this session has no rankings.")
        target = active[-1]
        session.retract(target["id"])
        return target

    def rankings(self) -> list[dict]:
        active, self.warnings = self._require_session().rankings()
        return active

    def pairs(self) -> list[Pair]:
        return session_pairs(self.rankings())

    def counts(self) -> dict:
        active = self.rankings()
        return {"rankings": sum(r["verdict"] == "ranked" for r in active),
                "all_bad": sum(r["verdict"] == "all_bad" for r in active),
                "skipped": sum(r["verdict"] == "skipped" for r in active),
                "pairs": len(session_pairs(active))}

    def export(self, path: Path | str) -> int:
        from .preferences import export_trl
        return export_trl(self.pairs(), Path(path))

    def import_pairs(self, path: Path | str, annotator: str = "import") -> int:
        """Append pairs from a TRL/OpenRLHF JSONL file as two-card rankings. The whole file is checked first."""
        pairs = read_trl(Path(path))
        self._require_session()
        if any(not p.prompt.strip() for p in pairs):
            raise SessionError(f"{path} has a pair with an empty prompt; nothing was imported.")
        for p in pairs:
            self.rank(p.prompt, [p.chosen, p.rejected], [[0], [1]], annotator=annotator)
        return len(pairs)

    def simulate(self, judge: str, n_prompts: int, cfg: GenerationConfig | None = None,
                 seed: int = 0) -> Iterator[dict]:
        """Generate for n built-in prompts and record the judge's rankings. Yields one row per prompt.

        Several prompts share one generate call (SIMULATE_ROWS rows): a decode step costs nearly the same
        for 32 rows as for 4 here, so 32 prompts x 4 answers take ~2.5x less time than one prompt at a time.
        """
        if not 1 <= int(n_prompts) <= 10000:
            raise LabError(f"--prompts must be between 1 and 10000, not {n_prompts}")
        fn = judges.get_judge(judge)
        cfg = cfg or GenerationConfig()
        self._require_session()
        models = self.models or self.load_model()
        prompts = builtin.sample_prompts(int(n_prompts), seed=seed)
        per_call = max(1, SIMULATE_ROWS // cfg.k)
        for start in range(0, len(prompts), per_call):
            chunk = prompts[start:start + per_call]
            rows = [p for p in chunk for _ in range(cfg.k)]
            with self.jobs.inline("simulate"):
                models.use(POLICY)
                rollout = worker.call(generate, models.peft, models.tokenizer, rows, cfg.max_new_tokens,
                                      cfg.temperature, cfg.top_p, seed * 100003 + start,
                                      None, self.jobs.stop_event)
            for j, prompt in enumerate(chunk):
                texts = rollout.texts[j * cfg.k:(j + 1) * cfg.k]
                truncated = rollout.truncated[j * cfg.k:(j + 1) * cfg.k].tolist()
                groups, scores = judges.rank(fn, prompt, texts)
                rec = self.rank(prompt, texts, groups, annotator=f"judge:{judge}",
                                extra={"judge_scores": scores, "truncated": truncated})
                index = start + j
                yield {"index": index, "prompt": prompt, "ranking": groups, "scores": scores, "id": rec["id"],
                       "progress": (index + 1) / n_prompts}

    # ---- reward model -------------------------------------------------------------------------------------------
    def train_reward(self, cfg: RewardConfig | None = None, inline: bool = True):
        """Train the reward adapter on the session's pairs. Inline: an iterator of metric rows; otherwise a
        background Job. Checks everything before any job starts, so bad input changes nothing."""
        cfg = cfg or RewardConfig()
        session = self._require_session()
        pairs = self.pairs()
        groups = groups_from_pairs(pairs)
        if count_pairs(groups) < 2:
            raise NotEnoughPairs(f"Only {count_pairs(groups)} usable pair(s) in this session: rank at least one "
                                 "more prompt first (ties only, 'all bad' and 'skip' give no pairs).")
        make = lambda: worker.iterate(lambda: self._train_reward_rows(session, pairs, cfg))  # noqa: E731
        return self.jobs.run_inline("train reward model", make) if inline else self.jobs.start("train reward model", make)

    def _train_reward_rows(self, session: Session, pairs: list[Pair], cfg: RewardConfig) -> Iterator[dict]:
        models = self.models
        run = int(time.time())
        if cfg.continue_training and checkpoints.is_complete(session.adapter_dir("reward")):
            self._load_saved_reward(session, cfg)
        else:
            models.reset_reward_adapter(cfg.lora_r, cfg.lora_layers)
        round_ = session.read_meta().get("round", 0)
        saved = False
        try:
            for row in train_reward_model(models, pairs, cfg, self.jobs.stop_event):
                row = {**row, "time": time.time(), "round": round_, "run": run}
                if row.get("summary") and row["trained"]:
                    checkpoints.save_adapter(models, REWARD, models.reward_head, session.adapter_dir("reward"),
                                             info={k: v for k, v in row.items() if not isinstance(v, dict)})
                    session.update_meta(reward_model={"trained_at": row["time"],
                                                      M.EVAL_RM_ACCURACY: row[M.EVAL_RM_ACCURACY],
                                                      "pairs_train": row["pairs_train"],
                                                      "pairs_eval": row["pairs_eval"]})
                    self._score_cache.clear()
                    saved = True
                elif not row.get("summary"):
                    session.log_metrics([{k: v for k, v in row.items() if k != "progress"}])
                yield row
        finally:
            if not saved:  # stopped or failed before a model was kept: memory goes back to what is on disk
                self._load_saved_reward(session, cfg)
            models.use(POLICY)

    def _load_saved_reward(self, session: Session, fresh: RewardConfig) -> None:
        models, folder = self.models, session.adapter_dir("reward")
        if checkpoints.is_complete(folder):
            models.reset_reward_adapter(*checkpoints.adapter_shape(folder, num_layers(models.base_model)))
            checkpoints.load_adapter(models, REWARD, models.reward_head, folder)
        else:
            models.reset_reward_adapter(fresh.lora_r, fresh.lora_layers)

    def score(self, prompt: str, completions: list[str], truncated: list[bool] | None = None) -> list[float]:
        """Reward-model scores of completions (cached per reward model); cut-off ones are scored without EOS."""
        if not self.has_reward_model:
            raise LabError("No reward model yet: train one on the Reward Model tab (or `train-rm`).")
        if self.jobs.current is not None and not worker.on_model_thread():
            raise LabBusy(self.jobs.busy_message())  # the model thread is busy until that job ends
        stamp = str(self.meta().get("reward_model", {}).get("trained_at"))
        cut = [bool(t) for t in (truncated or [False] * len(completions))]
        keys = [(stamp, prompt, c, t) for c, t in zip(completions, cut)]
        missing = [k for k in dict.fromkeys(keys) if k not in self._score_cache]
        if missing:
            worker.call(self._score_missing, missing)
        return [self._score_cache[k] for k in keys]

    @torch.no_grad()
    def _score_missing(self, keys: list[tuple]) -> None:
        models = self.models
        for start in range(0, len(keys), 8):
            chunk = keys[start:start + 8]
            ids, mask = tokenize_pairs(models.tokenizer, [k[1] for k in chunk], [k[2] for k in chunk],
                                       models.device, RewardConfig().max_length, [k[3] for k in chunk])
            for key, value in zip(chunk, models.score(ids, mask).tolist()):
                self._score_cache[key] = value

    def agreement(self, record: dict) -> tuple[int, int] | None:
        """(pairs where the reward model agrees with the ranking, pairs) for one ranking record."""
        pairs = pairs_from_ranking(record)
        if not pairs or not self.has_reward_model:
            return None
        scores = dict(zip(record["completions"], self.score(record["prompt"], record["completions"],
                                                             record.get("truncated"))))
        return sum(scores[p.chosen] > scores[p.rejected] for p in pairs), len(pairs)

    # ---- PPO -------------------------------------------------------------------------------------------------
    def ppo(self, steps: int, cfg: PPOConfig | None = None, inline: bool = True):
        """Run `steps` PPO updates; saves a new policy version at the end (or at a stop)."""
        cfg = cfg or PPOConfig()
        session = self._require_session()
        if not 1 <= int(steps) <= 10000:
            raise LabError(f"steps must be between 1 and 10000, not {steps}")
        if not self.has_reward_model:
            raise LabError("PPO needs a reward model: rank some answers and train one first.")
        make = lambda: worker.iterate(lambda: self._ppo_rows(session, int(steps), cfg))  # noqa: E731
        return self.jobs.run_inline("PPO", make) if inline else self.jobs.start("PPO", make)

    def _ppo_prompts(self, session: Session, n: int, rng: random.Random) -> list[str]:
        ranked = list(dict.fromkeys(r["prompt"] for r in self.rankings()))
        pool = ranked + [p for p in builtin.builtin_prompts() if p not in ranked]
        return [rng.choice(pool) for _ in range(n)]

    def _ppo_rows(self, session: Session, steps: int, cfg: PPOConfig) -> Iterator[dict]:
        models = self.models
        meta = session.read_meta()
        state = new_state(models, cfg, kl_coef=meta.get("kl_coef"), step=int(meta.get("ppo_steps", 0)))
        round_ = int(meta.get("round", 0))
        rng = random.Random(cfg.seed * 7919 + state.step)
        done, stopped, started = 0, False, time.time()
        for _ in range(steps):
            snapshot = _policy_snapshot(models)
            try:
                row, samples = ppo_step(models, self._ppo_prompts(session, cfg.batch_size, rng), cfg, state,
                                        self.jobs.stop_event, seed=cfg.seed * 1000003 + state.step)
            except Stopped:
                _policy_restore(models, snapshot)  # a half-done step is undone: memory matches a finished step
                stopped = True
                break
            done += 1
            row = {**row, "time": time.time(), "round": round_ + 1}
            session.log_metrics([row])
            yield {**row, "samples": samples, "progress": done / steps}
        summary = {"phase": "ppo", "summary": True, "steps": done, "stopped": stopped,
                   "seconds": round(time.time() - started, 2)}
        if done:
            version = self._next_policy_version(session)
            checkpoints.save_adapter(models, POLICY, models.value_head, session.adapter_dir("policy") / version,
                                     info={"steps": state.step, "round": round_ + 1})
            session.update_meta(policy_version=version, round=round_ + 1, ppo_steps=state.step,
                                kl_coef=state.kl_ctl.value)
            summary["policy_version"] = version
        yield summary

    @staticmethod
    def _next_policy_version(session: Session) -> str:
        folder = session.adapter_dir("policy")
        existing = [p.name for p in folder.glob("v[0-9][0-9][0-9]")] if folder.exists() else []
        return f"v{len(existing) + 1:03d}"

    def policy_versions(self) -> list[str]:
        folder = self._require_session().adapter_dir("policy")
        return ["base"] + sorted(p.name for p in folder.glob("v[0-9][0-9][0-9]") if checkpoints.is_complete(p))

    # ---- evaluation -----------------------------------------------------------------------------------------
    def evaluate(self, judge: str, n_prompts: int = 16, cfg: PPOConfig | None = None, seed: int = 1234) -> dict:
        """The judge's mean score of fresh samples from the policy and from the reference (same prompts,
        same seeds), and the policy samples' mean sequence KL to the reference."""
        fn = judges.get_judge(judge)
        cfg = cfg or PPOConfig()
        self._require_session()
        prompts = builtin.sample_prompts(int(n_prompts), seed=seed)
        with self.jobs.inline("evaluate"):
            result = worker.call(evaluate_policy, self.models, fn, prompts, cfg, seed)
        return {"judge": judge, "policy": self.meta().get("policy_version", "base"), **result}

    # ---- control ----------------------------------------------------------------------------------------------
    def stop(self) -> bool:
        """Ask the running job to stop at its next check (at least once per minibatch / token)."""
        return self.jobs.stop()

    def status(self) -> dict:
        job = self.jobs.current or self.jobs.last
        return {"session": self.session.name if self.session else None,
                "model": self.model_cfg.model if self.model_cfg else None,
                "busy": self.jobs.current.name if self.jobs.current else None,
                "job": None if job is None else {"name": job.name, "running": job.running, "error": job.error,
                                                 "last": {k: v for k, v in job.last.items() if k != "samples"}}}


def _policy_snapshot(models: LabModels) -> list[torch.Tensor]:
    return [p.detach().clone() for p in models.adapter_params(POLICY) + list(models.value_head.parameters())]


def _policy_restore(models: LabModels, snapshot: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, saved in zip(models.adapter_params(POLICY) + list(models.value_head.parameters()), snapshot):
            p.copy_(saved)
