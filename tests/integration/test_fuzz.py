"""Fuzzing every operation of the OpenAPI document with schemathesis: no 5xx, no answer off its schema.

A platform of its own (connect and query time limits of a few seconds, so a fuzzed host costs little) holds a
project with a connector, a datasource, a dataset, an exporter and a second member. Each operation gets a
bounded, derandomised number of generated requests, valid and invalid, sent with the admin token. Path ids
are the real ones except for deletions, so creations and updates reach the drivers' checks instead of
stopping at a 404; deletions get random ids. Checks: no server error, every status documented, every body
matching the documented schema.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from conftest import RunningPlatform, start_platform, stop_platform
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

import previsio_sdk as pio

#: Generated requests per operation (the explicit examples of the document come on top).
MAX_EXAMPLES = int(os.environ.get("PREVISIO_FUZZ_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]

#: Requests sent and statuses seen, per operation (printed at the end of the module).
SENT: Counter[tuple[str, str]] = Counter()
STATUSES: Counter[tuple[str, int]] = Counter()
#: Operations with no input an invalid request could be made of.
NOTHING_TO_NEGATE: set[str] = set()


@pytest.fixture(scope="module")
def fuzz_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """A platform for the fuzzer alone, with short connection and query time limits."""
    running = start_platform(
        tmp_path_factory.mktemp("fuzz-home"),
        env={"PREVISIO_CONNECT_TIMEOUT": "1", "PREVISIO_QUERY_TIMEOUT_SECONDS": "5"},
    )
    yield running
    stop_platform(running)
    ops = len({label for label, _mode in SENT})
    total = sum(SENT.values())
    by_class = Counter(f"{status // 100}xx" for (_label, status), n in STATUSES.items() for _ in range(n))
    print(f"\nschemathesis: {ops} operations, {total} requests, answers {dict(sorted(by_class.items()))}")


@pytest.fixture(scope="module")
def fuzz_ids(fuzz_platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Real ids to put in the generated paths."""
    db = tmp_path_factory.mktemp("fuzz-db") / "fuzz.db"
    con = sqlite3.connect(db)
    with con:
        con.execute("CREATE TABLE t (id INTEGER, label TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(10)])
    con.close()
    client = fuzz_platform.client()
    project = pio.Project.new("fuzz", client=client)
    connector = project.create_sql_connector("lite", driver="sqlite", database=str(db))
    source = project.create_datasource(connector, "t", table="t")
    job = project.create_dataset("snap", datasource=source, wait=False)
    dataset = job.wait()
    member = pio.User.create("fuzz-member", client=client)
    token = member.create_token()
    project.add_member(member, "viewer")
    exporter = client.post(
        f"/projects/{project.id}/exporters",
        {"name": "out", "connector_id": connector.id, "table": "out", "write_mode": "replace"},
    )
    export = client.post(f"/exporters/{exporter['id']}/exports", {"dataset_id": dataset.id})
    return {
        "project_id": project.id,
        "connector_id": connector.id,
        "datasource_id": source.id,
        "dataset_id": dataset.id,
        "job_id": job.id,
        "user_id": member.id,
        "token_id": token.id,
        "exporter_id": exporter["id"],
        "export_id": export["id"],
    }


@pytest.fixture(scope="module")
def api_schema(fuzz_platform: RunningPlatform) -> Any:
    """The platform's OpenAPI document, fetched with the admin token (the document needs one)."""
    auth = {"Authorization": f"Bearer {fuzz_platform.token}"}
    url = f"{fuzz_platform.url}/api/v1/openapi.json"
    schema = schemathesis.openapi.from_url(url, headers=auth, timeout=30)
    schema.config.update(base_url=fuzz_platform.url, headers=auth)
    return schema


def _runner(
    strategy: Any, label: str, mode: GenerationMode, platform: RunningPlatform, found: list[str]
) -> Any:
    """A Hypothesis test sending the requests of ``strategy``; it records failures instead of raising."""
    auth = {"Authorization": f"Bearer {platform.token}"}

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        SENT[(label, mode.value)] += 1
        try:
            response = case.call_and_validate(headers=auth, checks=CHECKS, timeout=60)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a FailureGroup too: every failure is collected
            if len(found) < 3:
                curl = case.as_curl_command(headers=auth).replace(platform.token, "<token>")
                found.append(
                    f"{label} [{mode.value}]: {type(exc).__name__}: {str(exc)[:600]}\n  {curl[:600]}"
                )
            return
        STATUSES[(label, response.status_code)] += 1

    return run


def _fuzz(api: Any, platform: RunningPlatform, ids: dict[str, str], mode: GenerationMode) -> list[str]:
    """Send MAX_EXAMPLES generated requests of ``mode`` to every operation; return the failures found."""
    failures: list[str] = []
    for result in api.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        names = {p.name for p in operation.path_parameters}
        fixed = {} if operation.method.upper() == "DELETE" else {n: ids[n] for n in names if n in ids}
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)
        found: list[str] = []

        run = _runner(strategy, label, mode, platform, found)
        try:
            run()
        except Unsatisfiable:  # nothing of the operation can be made invalid (GET /health takes nothing)
            NOTHING_TO_NEGATE.add(label)
        failures += found
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_operation_answers_5xx_or_off_its_schema(
    api_schema: Any, fuzz_platform: RunningPlatform, fuzz_ids: dict[str, str], mode: GenerationMode
) -> None:
    """Generated requests, valid or not, get a documented 2xx/4xx whose body matches the documented schema."""
    failures = _fuzz(api_schema, fuzz_platform, fuzz_ids, mode)
    assert failures == [], "\n".join(failures)
    assert not [k for k in STATUSES if k[1] >= 500]


def test_the_fuzzer_reached_every_operation(api_schema: Any) -> None:
    """Every operation of the document was fuzzed in both modes (by the tests above)."""
    documented = {f"{r.ok().method.upper()} {r.ok().path}" for r in api_schema.get_all_operations()}
    assert len(documented) >= 30, documented
    for mode in ("positive", "negative"):
        reached = {label for label, m in SENT if m == mode}
        if mode == "negative":
            reached |= NOTHING_TO_NEGATE
        assert documented <= reached, (mode, documented - reached)
