# A callback plugin for benches/floor.py: records, per task, its action and what it did on
# each host (ok, changed, skipped, failed), as JSON lines in $LLTUNE_SHAPE_OUT. The floor
# play is built from these records: one do-nothing module task per module task that ran.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: shape
type: aggregate
short_description: records each task's action and result per host (lltune benches)
description: Writes one JSON line per task result to the file named by LLTUNE_SHAPE_OUT.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "shape"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._out = open(os.environ["LLTUNE_SHAPE_OUT"], "a", encoding="utf-8")

    def _record(self, result, status):
        task = result._task
        self._out.write(json.dumps({
            "task": task.get_name(),
            "action": task.action,
            "host": result._host.get_name(),
            "status": status,
            "run_once": bool(task.run_once),
        }) + "\n")
        self._out.flush()

    def v2_runner_on_ok(self, result):
        self._record(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")
