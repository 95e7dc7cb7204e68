"""Imports as a whole: batches that fit a Kafka message, their ids, the spool, and the import's derived state."""

from __future__ import annotations

import io
import json
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.files import FileLimits, MalformedFile
from adapters.files.spool import AudienceFile, TargetSpool, encode_target
from models.events import TargetsImported, TargetsImportedData, dump_event, parse_event
from models.imports import (
    MAX_BATCH_BYTES,
    AppliedBatches,
    ImportFailure,
    ImportRecord,
    ImportReport,
    ImportSource,
    ImportStatus,
    ImportTally,
    batch_id_for,
    import_id_of,
    import_view,
    targets_imported_value,
)
from models.targets import TargetIn

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(owner=texts.filter(bool), task_id=texts.filter(bool), batch_id=texts.filter(bool),
       names=st.lists(texts, max_size=5))
def test_a_spliced_batch_is_exactly_the_event_pydantic_would_write(owner: str, task_id: str, batch_id: str,
                                                                     names: list[str]) -> None:
    rows = [{"username": f"user_{i:03d}", "first_name": name} for i, name in enumerate(names)]
    value = targets_imported_value(owner, task_id, batch_id, [orjson.dumps(r) for r in rows])
    event = parse_event(value)
    assert isinstance(event, TargetsImported)
    assert (event.user_id, event.data.task_id, event.data.batch_id, event.data.targets) == (owner, task_id,
                                                                                           batch_id, rows)
    rebuilt = TargetsImported(id=event.id, occurred_at=event.occurred_at, user_id=owner,
                              data=TargetsImportedData(task_id=task_id, batch_id=batch_id, targets=rows))
    assert json.loads(value) == json.loads(dump_event(rebuilt))


def test_batch_ids_name_their_import_and_nothing_else_does() -> None:
    import_id = str(uuid.uuid4())
    assert import_id_of(batch_id_for(import_id, 17)) == import_id
    for other in (str(uuid.uuid4()), "b1", f"{import_id}:x", "not-a-uuid-but-36-characters-long-xx:1", ":3"):
        assert import_id_of(other) is None


def _spool_of(n: int, **extra: str) -> tuple[TargetSpool, ImportTally]:
    spool, tally = TargetSpool(), ImportTally()
    targets = [(i + 2, TargetIn(username=f"user_{i:05d}", extra=extra or None)) for i in range(n)]
    tally.accepted = n
    spool.write(targets, tally)
    return spool, tally


def test_batches_are_cut_by_rows_and_by_bytes_in_order() -> None:
    spool, _ = _spool_of(2_500)
    by_rows = list(spool.batches(max_rows=1_000))
    assert [len(b) for b in by_rows] == [1_000, 1_000, 500]
    assert [json.loads(line)["username"] for b in by_rows for line in b] == [f"user_{i:05d}" for i in range(2_500)]
    by_bytes = list(spool.batches(max_rows=10_000, max_bytes=10_000))
    assert sum(len(b) for b in by_bytes) == 2_500
    assert all(sum(len(line) + 1 for line in b) <= 10_000 for b in by_bytes)
    spool.close()


def test_every_batch_fits_in_a_kafka_message_even_with_wide_rows() -> None:
    spool, _ = _spool_of(300, bio="x" * 20_000)
    for batch in spool.batches():
        value = targets_imported_value("owner", str(uuid.uuid4()), batch_id_for(str(uuid.uuid4()), 1), batch)
        assert len(value) <= MAX_BATCH_BYTES  # under faust's 1 000 000-byte request limit
    spool.close()


def test_a_row_too_large_for_any_batch_is_rejected_with_its_row() -> None:
    spool, tally = TargetSpool(max_row_bytes=1_000), ImportTally()
    tally.accepted = 2
    spool.write([(2, TargetIn(username="small_one")), (3, TargetIn(username="big_one", extra={"a": "x" * 2_000}))],
                tally)
    assert (spool.rows, tally.accepted, tally.rejected) == (1, 1, 1)
    assert tally.problems[0].row == 3 and "at most 1000 fit in one batch" in tally.problems[0].reason
    spool.close()


def test_the_audience_file_reads_in_chunks_and_counts_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("username,phone\n" + "".join(f"user_{i:05d},\n" for i in range(50)) + "bad name,\nuser_00001,\n")
    with AudienceFile(path, filename="a.csv") as audience:
        chunks = [audience.take(20) for _ in range(4)]
        assert [len(c) for c in chunks] == [20, 20, 10, 0]
        report = audience.report()
    assert audience.rows_read == 52
    assert (report.accepted, report.rejected, report.duplicate) == (50, 1, 1)
    assert report.problems[0].row == 52


def test_a_broken_file_fails_when_opened_or_when_its_chunk_is_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(MalformedFile, match="empty"):
        AudienceFile(empty, filename="empty.csv")
    broken = tmp_path / "b.csv"
    broken.write_bytes(b"username,note\n" + b"".join(b"user_%03d,x\n" % i for i in range(100)) + b'user_x,"open\n')
    with AudienceFile(broken, filename="b.csv") as audience:
        assert len(audience.take(50)) == 50
        with pytest.raises(MalformedFile, match="row 102"):
            audience.take(100)


def _spooling_peak(path: Path, rows: int) -> int:
    with open(path, "w") as f:
        f.write("username,user_id,first_name\n")
        f.writelines(f"user_{i:07d},{10_000_000 + i},Name\n" for i in range(rows))
    tracemalloc.start()
    try:
        with AudienceFile(path, filename="big.csv", limits=FileLimits()) as audience, TargetSpool() as spool:
            while spool.fill(audience, 20_000):
                pass
            assert spool.rows == rows
            assert sum(len(b) for b in spool.batches()) == rows
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_spooling_costs_memory_for_the_duplicate_check_only(tmp_path: Path) -> None:
    small = _spooling_peak(tmp_path / "small.csv", 40_000)
    large = _spooling_peak(tmp_path / "large.csv", 160_000)
    # What grows with the file is the de-duplicator's hashes (two identities a
    # row here, ~150 bytes); rows, chunks and batches come and go. Holding the
    # rows themselves would cost well over a kilobyte each.
    per_row = (large - small) / 120_000
    assert per_row < 300, per_row
    assert small < 40 * 1024 * 1024, small  # one chunk of 20 000 rows at a time


def _record(status: ImportStatus, updated_ago: float, batches: int = 2) -> ImportRecord:
    now = datetime.now(UTC)
    return ImportRecord(
        id="i", owner="o", task_id="t", source=ImportSource.CSV, status=status, batches=batches,
        rows_published=10, report=ImportReport(accepted=10, rejected=2, duplicate=1),
        created_at=now - timedelta(seconds=updated_ago + 1), updated_at=now - timedelta(seconds=updated_ago),
    )


def test_the_import_view_derives_completed_and_interrupted() -> None:
    now = datetime.now(UTC)
    half = AppliedBatches(batches=1, accepted=4, duplicate=1)
    done = AppliedBatches(batches=2, accepted=8, duplicate=1, suppressed=1)
    assert import_view(_record(ImportStatus.PUBLISHED, 1), half, now=now, stale_after=60).status is ImportStatus.PUBLISHED
    view = import_view(_record(ImportStatus.PUBLISHED, 1), done, now=now, stale_after=60)
    assert view.status is ImportStatus.COMPLETED and view.progress.percent == 100.0
    assert view.result.model_dump() == {"accepted": 8, "duplicate": 2, "invalid": 2, "suppressed": 1}
    # A published import waits for its batches however long they take; an active one does not.
    assert import_view(_record(ImportStatus.PUBLISHED, 600), half, now=now, stale_after=60).status is ImportStatus.PUBLISHED
    lost = import_view(_record(ImportStatus.PUBLISHING, 600), half, now=now, stale_after=60)
    assert lost.status is ImportStatus.INTERRUPTED and "publishing" in lost.error.message  # type: ignore[union-attr]
    failed = _record(ImportStatus.FAILED, 600).model_copy(update={"error": ImportFailure(code="x", message="m")})
    assert import_view(failed, AppliedBatches(), now=now, stale_after=60).error == ImportFailure(code="x", message="m")


def test_encoded_targets_leave_out_empty_fields() -> None:
    assert encode_target(TargetIn(username="alice_99", user_id=5)) == b'{"username":"alice_99","user_id":5}'
    assert io.BytesIO  # the module's readers take binary streams
