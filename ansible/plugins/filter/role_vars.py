# -*- coding: utf-8 -*-
# lltune.tuning.role_vars: a host's role variables, checked against the role's argument spec.
# Documentation: the sidecar role_vars.yml beside this file.
from __future__ import annotations

from collections.abc import Mapping

import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML without libyaml
    from yaml import SafeLoader as _Loader


def _options(spec, entry):
    try:
        with open(spec, "rb") as f:
            return yaml.load(f, Loader=_Loader)["argument_specs"][entry]["options"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise AnsibleFilterError(f"role_vars: cannot read the options of {entry!r} in {spec}: {e}") from e


def role_vars(given, spec, entry="main"):
    """The host's role variables `given` (name: value, undefined ones left out) checked
    against the options of `entry` in the role's meta/argument_specs.yml `spec`, with
    Ansible's validator and messages; returns them converted as the spec says, with the
    defaults of those not given. A variable of type dict without options is checked only to
    be a mapping and returned as it is (its content is a module's to check)."""
    if not isinstance(given, Mapping):
        raise AnsibleFilterError(f"role_vars: expects a mapping of variables, not {type(given).__name__}")
    options = _options(spec, entry)
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise AnsibleFilterError(f"role_vars: not options of {entry!r} in {spec}: {', '.join(unknown)}")
    opaque = {
        k: v for k, v in given.items()
        if options[k].get("type") == "dict" and "options" not in options[k] and isinstance(v, Mapping)
    }
    # A stand-in for each opaque mapping: the validator would copy and walk a whole config.
    checked = {k: ({} if k in opaque else v) for k, v in given.items()}
    result = ArgumentSpecValidator(options).validate(checked, validate_role_argument_spec=True)
    if result.error_messages:
        raise AnsibleFilterError("Validation of arguments failed:\n" + "\n".join(result.error_messages))
    return {**result.validated_parameters, **opaque}


class FilterModule:
    def filters(self):
        return {"role_vars": role_vars}
