"""Cancelling jobs and exports: ``Job.cancel()``, ``Export.cancel()``, and waiting on a cancelled job."""

from __future__ import annotations

import pytest

import previsio_sdk as pio

from .payloads import MockApi, assert_request, export_payload, job_payload


class TestJobCancel:
    def test_cancel_posts_and_returns_the_job_state(self, client: pio.Client, api: MockApi) -> None:
        """job.cancel() POSTs /jobs/{id}/cancel and returns the job as the platform answered (cancelling)."""
        api.add("POST", "/jobs/j1/cancel", status=202, json=job_payload(status="cancelling"))

        job = pio.Job.from_dict(job_payload(status="running"), client).cancel()

        assert_request(api.requests[0], "POST", "/jobs/j1/cancel")
        assert isinstance(job, pio.Job)
        assert (job.status, job.done) == ("cancelling", False)

    def test_a_cancelled_job_is_done(self, client: pio.Client) -> None:
        """A job whose status is cancelled counts as ended."""
        assert pio.Job.from_dict(job_payload(status="cancelled"), client).done

    def test_waiting_on_a_cancelled_job_raises_job_cancelled(self, client: pio.Client, api: MockApi) -> None:
        """wait() on a job that ends cancelled raises JobCancelledError (a JobFailedError) with its id."""
        api.add("GET", "/jobs/j1", json=job_payload(status="cancelling"))
        api.add(
            "GET",
            "/jobs/j1",
            json=job_payload(
                status="cancelled",
                dataset_id=None,
                error_code="cancelled",
                error_message="The job was cancelled.",
            ),
        )

        with pytest.raises(pio.JobCancelledError) as info:
            pio.Job.from_dict(job_payload(status="running"), client).wait(progress=False)
        assert isinstance(info.value, pio.JobFailedError)
        assert (info.value.code, info.value.job_id) == ("cancelled", "j1")
        assert "cancelled" in str(info.value)

    def test_cancelling_a_finished_job_raises_conflict(self, client: pio.Client, api: MockApi) -> None:
        """The platform's 409 job_finished becomes a ConflictError with that code."""
        api.add(
            "POST",
            "/jobs/j1/cancel",
            status=409,
            json={"error": {"code": "job_finished", "message": "The job has already ended (succeeded)."}},
        )

        with pytest.raises(pio.ConflictError) as info:
            pio.Job.from_dict(job_payload(status="succeeded"), client).cancel()
        assert info.value.code == "job_finished"


class TestExportCancel:
    def test_cancel_posts_and_returns_the_export_state(self, client: pio.Client, api: MockApi) -> None:
        """export.cancel() POSTs /exports/{id}/cancel and returns the export as the platform answered."""
        api.add("POST", "/exports/x1/cancel", status=202, json=export_payload(status="cancelled"))

        export = pio.Export.from_dict(export_payload(), client).cancel()

        assert_request(api.requests[0], "POST", "/exports/x1/cancel")
        assert isinstance(export, pio.Export)
        assert (export.status, export.done) == ("cancelled", True)

    def test_waiting_on_a_cancelled_export_raises_job_cancelled(
        self, client: pio.Client, api: MockApi
    ) -> None:
        """wait() on an export that ends cancelled raises JobCancelledError."""
        api.add(
            "GET",
            "/exports/x1",
            json=export_payload(status="cancelled", error_code="cancelled", error_message="Cancelled."),
        )

        with pytest.raises(pio.JobCancelledError) as info:
            pio.Export.from_dict(export_payload(status="running"), client).wait(progress=False)
        assert (info.value.code, info.value.job_id) == ("cancelled", "x1")
