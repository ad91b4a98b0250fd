"""``moa eval``: does blending help? Run a task set through each model alone and through
each strategy over those models, score every answer, and compare accuracy (with a 95%
interval), cost, calls and latency.

    from moa.eval import EvalPlan, load_tasks, run_eval, summarise

    tasks = load_tasks("arithmetic").tasks[:20]
    plan = EvalPlan(models=["local/smollm2"], strategies=["self_moa", "vote"], max_tokens=96)
    async with Runtime.from_settings() as runtime:
        report = summarise(await run_eval(tasks, plan, runtime))
"""

from __future__ import annotations

from moa.eval.cache import AnswerCache, Reply, default_cache_dir
from moa.eval.plan import EvalPlan, System
from moa.eval.report import EvalReport, SystemScore, summarise, wilson
from moa.eval.runner import AnswerRecord, EvalRun, run_eval
from moa.eval.scoring import Scored, score
from moa.eval.tasks import SHIPPED, Task, TaskSet, load_tasks, parse_tasks

__all__ = [
    "SHIPPED",
    "AnswerCache",
    "AnswerRecord",
    "EvalPlan",
    "EvalReport",
    "EvalRun",
    "Reply",
    "Scored",
    "System",
    "SystemScore",
    "Task",
    "TaskSet",
    "default_cache_dir",
    "load_tasks",
    "parse_tasks",
    "run_eval",
    "score",
    "summarise",
    "wilson",
]
