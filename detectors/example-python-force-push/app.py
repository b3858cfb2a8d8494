"""Example detector in Python (componentize-py): a force push to a protected branch.

Urgent when branch protection on the same system was disabled shortly before the push
(the "disable protection, push, re-enable" pattern); needs review otherwise. Built by
scripts/build-detectors.sh into target/wasm32-wasip2/release/example_python_force_push.wasm
against the same WIT as the Rust detectors (wit/since_v0.1.0).
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import clock, config, log, types

SIGNAL = "branch.force_push_protected"
NANOS_PER_MINUTE = 60 * 1_000_000_000


def _config(key: str) -> str:
    # The host applies the defaults declared in `info()`, so a declared key always has a value.
    value = config.get(key)
    if value is None:
        raise Err(types.AnalyzeError(f"config key `{key}` is not declared"))
    return value


def _branch(event: types.Event) -> str:
    for attribute in event.attributes:
        if attribute.key == "branch" and isinstance(attribute.value, types.AttributeValue_Text):
            return attribute.value.value
    ref = event.resource
    return ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref


class WitWorld(wit_world.WitWorld):
    def info(self) -> types.DetectorInfo:
        return types.DetectorInfo(
            name="example.force-push-protected",
            version="0.1.0",
            description="Force push to a protected branch, urgent right after protection was disabled",
            sources=[],
            actions=["git.push.force", "branch.protection.*"],
            signals=[SIGNAL],
            config=[
                types.ConfigKey("protected_branches", "main,master", "Comma-separated protected branch names"),
                types.ConfigKey("window_minutes", "60", "How soon after disabling protection a push is urgent"),
            ],
            views=[],
        )

    def analyze(self, trajectory: types.Trajectory) -> list[types.Finding]:
        protected = {b.strip() for b in _config("protected_branches").split(",") if b.strip()}
        try:
            window = int(_config("window_minutes")) * NANOS_PER_MINUTE
        except ValueError:
            raise Err(types.AnalyzeError("config key `window_minutes` is not a whole number"))

        findings = []
        for i, push in enumerate(trajectory.events):
            if push.action != "git.push.force":
                continue
            branch = _branch(push)
            if branch not in protected:
                continue
            disabled = None
            for earlier in trajectory.events[:i]:
                if (
                    earlier.action == "branch.protection.disabled"
                    and earlier.system == push.system
                    and 0 <= push.time - earlier.time <= window
                ):
                    disabled = earlier
            evidence = [push.id]
            if disabled is not None:
                evidence.insert(0, disabled.id)
                for later in trajectory.events[i + 1:]:
                    if later.action == "branch.protection.enabled" and later.system == push.system:
                        evidence.append(later.id)
                        break
                severity, score = 3, 0.95
                title = f"{push.actor.id} disabled protection on {push.system} and force-pushed {branch}"
                next_step = "Review the overwritten commits and who disabled protection; restore the branch if needed"
            else:
                severity, score = 2, 0.7
                title = f"{push.actor.id} force-pushed protected branch {branch} on {push.system}"
                next_step = "Review the overwritten commits and ask for justification"
            findings.append(types.Finding(SIGNAL, severity, score, title, evidence, next_step))
        if findings:
            log.log(log.Level.INFO, f"{len(findings)} force pushes to protected branches at {clock.now()}")
        return findings
