#!/usr/bin/env python3
"""An external evaluator for HM3, written against the public contract only.

It knows nothing of HM3's TypeScript: it compiles proto/hm3/v1/*.proto with grpcio-tools' protoc at
start-up, consumes `hm3.eval.requested` with kafka-python, scores each request with a harness of its
own, and answers on `hm3.eval.completed` (or `hm3.eval.failed`), as docs/events.md describes.

Its harness is deliberately trivial: a lookup of answers another harness already produced. Given
--answers (the zoo's answers.json: what PyTorch's greedy decoding answered, per model, task, split and
example), it computes exact match = the share of a split's examples whose recorded answer equals the
gold `answer` field of the dataset's JSONL lines, which it reads itself (--datasets-root/<task>/<split>.jsonl,
or the objective's dataset uri when it is a folder under --datasets-root). The model is identified by
the last path segment of the target ModelRef's uri (e.g. `base`). A model, task or split it has no
answers for is answered with hm3.eval.failed (FAILED_PRECONDITION). A real cluster would run its own
models here; the contract around it stays the same.

Usage:
  python external_evaluator.py --brokers 127.0.0.1:9092 --answers tools/fixtures/zoo/answers.json \
      --datasets-root tools/fixtures/zoo/datasets [--max-requests N] [--idle-timeout S]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
EVENT_ID_HEADER = "hm3-event-id"
TRACE_ID_HEADER = "hm3-trace-id"
SCHEMA_VERSION = 1


def compile_protos(proto_root: Path) -> tuple[object, object]:
    """Compiles the contract's .proto files into a temporary package; returns (events_pb2, common_pb2)."""
    import grpc_tools
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="hm3-proto-"))
    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    files = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "hm3" / "v1").glob("*.proto"))
    rc = protoc.main(["protoc", f"-I{proto_root}", f"-I{include}", f"--python_out={out}", *files])
    if rc != 0:
        raise SystemExit(f"protoc failed ({rc}) on {files}")
    sys.path.insert(0, str(out))
    return importlib.import_module("hm3.v1.events_pb2"), importlib.import_module("hm3.v1.common_pb2")


class Harness:
    """Exact match of recorded answers against the gold answers of the dataset's split."""

    SPLIT_FILES = {1: "search", 2: "heldout", 0: "search"}  # Split enum: UNSPECIFIED means SEARCH

    def __init__(self, answers_file: Path, datasets_root: Path) -> None:
        self.answers = json.loads(answers_file.read_text())["answers"]
        self.datasets_root = datasets_root.resolve()

    def gold(self, dataset_dir: Path, split: str) -> list[str]:
        lines = (dataset_dir / f"{split}.jsonl").read_text().splitlines()
        return [json.loads(line)["answer"] for line in lines if line.strip()]

    def score(self, model: str, objective, split_value: int) -> tuple[float, int]:
        split = self.SPLIT_FILES.get(split_value)
        if split is None:
            raise LookupError(f"split {split_value} is not served (search and heldout only)")
        uri = objective.dataset.uri if objective.HasField("dataset") else ""
        dataset_dir = (self.datasets_root / uri).resolve() if uri else self.datasets_root / objective.task
        if self.datasets_root not in dataset_dir.parents:
            raise LookupError(f"dataset {uri!r} is not under {self.datasets_root}")
        task = dataset_dir.name
        recorded = self.answers.get(model, {}).get(task, {}).get(split)
        if recorded is None:
            raise LookupError(f"no recorded answers for model {model!r}, task {task!r}, split {split!r}")
        gold = self.gold(dataset_dir, split)
        n = len(gold) if objective.max_examples == 0 else min(objective.max_examples, len(gold))
        right = sum(1 for a, g in zip(recorded[:n], gold[:n]) if a == g)
        return right / n, n


def derived_id(cause: str, kind: str) -> str:
    """The answer's event id, derived from the request's: a repeated answer carries the same id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hm3:{cause}:{kind}"))


def answer_envelope(events_pb2, request, payload_field: str, payload, producer: str):
    env = events_pb2.Envelope(
        event_id=derived_id(request.event_id, payload_field),
        schema_version=SCHEMA_VERSION,
        type="hm3.eval.completed" if payload_field == "eval_completed" else "hm3.eval.failed",
        trace_id=request.trace_id,
        search_id=request.search_id,
        candidate_id=request.candidate_id,
        causation_id=request.event_id,
        producer=producer,
    )
    env.occurred_at.GetCurrentTime()
    getattr(env, payload_field).CopyFrom(payload)
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", default=os.environ.get("HM3_KAFKA_BROKERS", "127.0.0.1:9092"))
    ap.add_argument("--group", default="external-evaluator")
    ap.add_argument("--requested-topic", default="hm3.eval.requested")
    ap.add_argument("--completed-topic", default="hm3.eval.completed")
    ap.add_argument("--failed-topic", default="hm3.eval.failed")
    ap.add_argument("--proto-root", type=Path, default=REPO / "proto")
    ap.add_argument("--answers", type=Path, default=REPO / "tools/fixtures/zoo/answers.json")
    ap.add_argument("--datasets-root", type=Path, default=REPO / "tools/fixtures/zoo/datasets")
    ap.add_argument("--producer", default="external-evaluator")
    ap.add_argument("--max-requests", type=int, default=0, help="exit after answering this many (0: run on)")
    ap.add_argument("--idle-timeout", type=float, default=0, help="exit after this many idle seconds (0: never)")
    args = ap.parse_args()

    events_pb2, common_pb2 = compile_protos(args.proto_root.resolve())
    from kafka import KafkaConsumer, KafkaProducer

    harness = Harness(args.answers, args.datasets_root)
    brokers = args.brokers.split(",")
    consumer = KafkaConsumer(
        args.requested_topic,
        bootstrap_servers=brokers,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = KafkaProducer(bootstrap_servers=brokers, acks="all")
    answered = 0
    idle_since = time.monotonic()
    print(json.dumps({"event": "started", "topic": args.requested_topic, "group": args.group}), flush=True)
    try:
        while args.max_requests == 0 or answered < args.max_requests:
            batches = consumer.poll(timeout_ms=500)
            if not batches:
                if args.idle_timeout and time.monotonic() - idle_since > args.idle_timeout:
                    print(json.dumps({"event": "idle-timeout", "answered": answered}), flush=True)
                    return 1 if args.max_requests else 0
                continue
            idle_since = time.monotonic()
            for records in batches.values():
                for record in records:
                    request = events_pb2.Envelope()
                    request.ParseFromString(record.value)
                    if request.schema_version != SCHEMA_VERSION or request.WhichOneof("payload") != "eval_requested":
                        # Not ours to answer (a real cluster would dead-letter it).
                        continue
                    started = time.monotonic()
                    req = request.eval_requested
                    model = req.model.uri.rstrip("/").split("/")[-1] if req.WhichOneof("target") == "model" else ""
                    try:
                        if not model:
                            raise LookupError("only whole-model targets are served")
                        scores = []
                        for objective in req.objectives:
                            value, count = harness.score(model, objective, req.split)
                            scores.append(
                                common_pb2.Score(
                                    objective=objective.name,
                                    metric=objective.metric or "exact_match",
                                    split=req.split or 1,
                                    value=value,
                                    example_count=count,
                                )
                            )
                        payload = events_pb2.EvalCompleted(scores=scores, elapsed_seconds=time.monotonic() - started)
                        env, topic = answer_envelope(events_pb2, request, "eval_completed", payload, args.producer), args.completed_topic
                    except (LookupError, OSError) as error:
                        failure = events_pb2.Failure(code="FAILED_PRECONDITION", message=str(error), retryable=False)
                        payload = events_pb2.EvalFailed(failure=failure)
                        env, topic = answer_envelope(events_pb2, request, "eval_failed", payload, args.producer), args.failed_topic
                    producer.send(
                        topic,
                        key=env.candidate_id.encode(),
                        value=env.SerializeToString(),
                        headers=[(EVENT_ID_HEADER, env.event_id.encode()), (TRACE_ID_HEADER, env.trace_id.encode())],
                    )
                    producer.flush()
                    consumer.commit()  # after the answer is out: a crash before it repeats the answer (same id)
                    answered += 1
                    print(
                        json.dumps({"event": topic, "candidate": env.candidate_id, "causation": env.causation_id}),
                        flush=True,
                    )
        return 0
    finally:
        consumer.close()
        producer.close()


if __name__ == "__main__":
    sys.exit(main())
