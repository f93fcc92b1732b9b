"""Inspect and replay dead-lettered messages: ``python -m controlroom_runtime.deadletters``
(``make deadletters ARGS="..."``).

  list [--consumer C] [--limit N]   one line per record: sequence, when, consumer, subject, why
  show SEQ                          one record whole, its payload parsed when it is JSON
  replay SEQ [SEQ ...] | --all [--consumer C]
                                    publish each message again on its original subject and
                                    remove its record once the stream has stored it

A replay is a new message with the original body and headers (so the original event id, and
every consumer's inbox drops it where it was handled already) under a ``Nats-Msg-Id`` of its
own, derived from the record, so replaying one record twice in a row stores it once. A record
whose payload was cut short when it was dead-lettered cannot be replayed and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from uuid import NAMESPACE_URL, uuid5

import nats
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import ValidationError

from controlroom_contracts import subjects
from controlroom_contracts.deadletter import DeadLetter

STREAM = subjects.DEADLETTER_STREAM


@dataclass(frozen=True)
class Record:
    sequence: int
    letter: DeadLetter


class NotReplayable(Exception):
    """The record cannot be published again as it was; the message says why."""


async def records(js: JetStreamContext, consumer: str | None = None) -> AsyncIterator[Record]:
    """Every record in the dead-letter stream, oldest first (of ``consumer`` only if given)."""
    state = (await js.stream_info(STREAM)).state
    if state.messages == 0:  # a stream never written to says first_seq 0, which get_msg refuses
        return
    for sequence in range(max(state.first_seq, 1), state.last_seq + 1):
        record = await get(js, sequence)
        if record is not None and (consumer is None or record.letter.consumer == consumer):
            yield record


async def get(js: JetStreamContext, sequence: int) -> Record | None:
    """The record at ``sequence``, or None if there is none (replayed, or expired)."""
    if sequence < 1:
        return None
    try:
        raw = await js.get_msg(STREAM, sequence)
    except NotFoundError:
        return None
    try:
        return Record(sequence, DeadLetter.model_validate_json(raw.data or b""))
    except ValidationError:
        return None  # not a record of ours; nothing to show or replay


async def replay(js: JetStreamContext, record: Record) -> None:
    """Publish the message again on its original subject, then delete its record."""
    letter = record.letter
    if letter.truncated:
        raise NotReplayable(
            f"record {record.sequence}: its payload was cut short when it was dead-lettered"
        )
    headers = {k: v for k, v in letter.headers.items() if k != "Nats-Msg-Id"}
    headers["Nats-Msg-Id"] = str(uuid5(NAMESPACE_URL, f"replay/{STREAM}/{record.sequence}"))
    try:
        await js.publish(
            letter.original_subject, letter.payload.encode(), headers=headers, timeout=5.0
        )
    except Exception as exc:
        raise NotReplayable(f"record {record.sequence}: not stored: {exc!r}") from exc
    await js.delete_msg(STREAM, record.sequence)


def _line(record: Record) -> str:
    letter = record.letter
    reason = " ".join(letter.reason.split())[:100]
    return (
        f"{record.sequence:>6}  {letter.dead_lettered_at[:19]}  {letter.consumer:<24} "
        f"{letter.original_subject:<36} {reason}"
    )


def _shown(record: Record) -> str:
    body = record.letter.model_dump()
    try:
        body["payload"] = json.loads(record.letter.payload)
    except ValueError:
        pass
    return json.dumps({"sequence": record.sequence, **body}, indent=2)


async def run(argv: Sequence[str], nats_url: str) -> int:
    args = _parser().parse_args(argv)
    client = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = client.jetstream()
        if args.command == "list":
            shown = 0
            async for record in records(js, args.consumer):
                if shown == args.limit:
                    print(f"... more; --limit {args.limit} reached")
                    break
                print(_line(record))
                shown += 1
            if shown == 0:
                print("no dead-lettered messages")
            return 0
        if args.command == "show":
            found = await get(js, args.sequence)
            if found is None:
                print(f"no record at sequence {args.sequence}", file=sys.stderr)
                return 1
            print(_shown(found))
            return 0
        return await _replay(js, args)
    finally:
        await client.close()


async def _replay(js: JetStreamContext, args: argparse.Namespace) -> int:
    if args.all:
        chosen = [r async for r in records(js, args.consumer)]
    elif args.sequences:
        found = [(seq, await get(js, seq)) for seq in args.sequences]
        for seq, record in found:
            if record is None:
                print(f"no record at sequence {seq}", file=sys.stderr)
        chosen = [record for _seq, record in found if record is not None]
    else:
        print("replay: give record sequences, or --all", file=sys.stderr)
        return 2
    failed = 0
    for record in chosen:
        try:
            await replay(js, record)
        except NotReplayable as exc:
            failed += 1
            print(f"not replayed: {exc}", file=sys.stderr)
            continue
        print(f"replayed {record.sequence} -> {record.letter.original_subject}")
    return 1 if failed or (args.sequences and len(chosen) < len(args.sequences)) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m controlroom_runtime.deadletters",
        description="Inspect and replay dead-lettered messages (CONTROLROOM_NATS_URL).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per record, oldest first")
    listing.add_argument("--consumer", help="only this consumer's records")
    listing.add_argument("--limit", type=int, default=100)
    show = commands.add_parser("show", help="one record whole")
    show.add_argument("sequence", type=int)
    again = commands.add_parser("replay", help="publish again on the original subject")
    again.add_argument("sequences", type=int, nargs="*", metavar="SEQ")
    again.add_argument("--all", action="store_true", help="every record (of --consumer)")
    again.add_argument("--consumer", help="with --all: only this consumer's records")
    return parser


def main() -> int:
    url = os.environ.get("CONTROLROOM_NATS_URL", "nats://127.0.0.1:4222")
    try:
        return asyncio.run(run(sys.argv[1:], url))
    except (OSError, nats.errors.NoServersError, TimeoutError) as exc:
        print(f"cannot reach NATS at {url}: {exc!r}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
