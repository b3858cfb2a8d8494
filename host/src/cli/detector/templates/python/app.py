"""@NAME@: a large data export soon after the same actor read a secret.

Every large export is judged with the latest secret read before it, so a harmless small
export in between hides nothing. Built with componentize-py against wit/detector.wit
(README.md has the command).
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, types

SIGNAL = "@SIGNAL@"
NANOS_PER_MINUTE = 60 * 1_000_000_000


def _whole(key: str) -> int:
    # The host answers every declared key: its configured value or the default in info().
    value = config.get(key)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Err(types.AnalyzeError(f"config key `{key}` is not a whole number: {value!r}"))


def _rows(event: types.Event) -> int:
    return (event.volume.rows or 0) if event.volume is not None else 0


class WitWorld(wit_world.WitWorld):
    def info(self) -> types.DetectorInfo:
        return types.DetectorInfo(
            name="@NAME@",
            version="0.1.0",
            description="Large data export soon after the same actor read a secret",
            sources=[],
            actions=["secret.read", "data.export"],
            signals=[SIGNAL],
            config=[
                types.ConfigKey("window_minutes", "60", "How soon after the secret read an export counts"),
                types.ConfigKey("min_rows", "10000", "Rows that make an export large"),
            ],
            views=[types.TrajectoryKind.ACTOR],
        )

    def analyze(self, trajectory: types.Trajectory) -> list[types.Finding]:
        window = _whole("window_minutes") * NANOS_PER_MINUTE
        min_rows = _whole("min_rows")
        findings = []
        latest_read = None
        for event in trajectory.events:
            if event.action == "secret.read":
                latest_read = event
            elif event.action == "data.export" and _rows(event) >= min_rows:
                read = latest_read
                if read is None or event.time - read.time > window:
                    continue
                dest = event.destination or "an unknown destination"
                minutes = (event.time - read.time) // NANOS_PER_MINUTE
                title = f"{event.actor.id} exported {_rows(event)} rows to {dest} {minutes} min after reading {read.resource}"
                findings.append(
                    types.Finding(
                        SIGNAL, 2, 0.7, title[:200], [read.id, event.id],
                        "Ask the actor why the export followed the secret read",
                    )
                )
        return findings
