"""The workflow layer: the one reader of the whole config.

:class:`~wsss.workflow.plan.Plan` answers what the rule files ask (which run feeds which, the
jobs and files a run owns, each stage's settings); :mod:`~wsss.workflow.paths` is the table of
artifact paths; :mod:`~wsss.workflow.runs` names runs and seeds; :mod:`~wsss.workflow.checks`
and :mod:`~wsss.workflow.datasets` cross-check the config before the DAG is built.
"""

from wsss.workflow.plan import Plan

__all__ = ["Plan"]
