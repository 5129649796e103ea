"""The Web API methods the fake answers, as Slack does: a mixin over the fake's state."""

import itertools
import time
from collections import defaultdict
from typing import Any

from tests.fakes.slack.blockkit import MESSAGE_BLOCK_LIMIT, block_problems, view_problems
from tests.fakes.slack.specs import SlackError


class SlackMethods:
    bot_user_id: str
    team_id: str
    channels: dict[str, dict[str, Any]]
    messages: defaultdict[str, dict[str, dict[str, Any]]]
    ephemerals: list[dict[str, Any]]
    views: dict[str, dict[str, Any]]
    home_views: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    usergroups: dict[str, list[str]]
    _used_triggers: set[str]
    _counter: "itertools.count[int]"

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._counter):06d}"

    def _channel(self, channel_id: str, *, posting: bool) -> dict[str, Any] | None:
        """Channels must be known; the bot must be in them to post. DMs to users always work."""
        if channel_id[:1] in ("U", "W", "D"):
            return None
        channel = self.channels.get(channel_id)
        if channel is None:
            raise SlackError("channel_not_found")
        if posting and not channel["is_member"]:
            raise SlackError("not_in_channel")
        return channel

    def _check_message_content(self, args: dict[str, Any], *, require: bool = True) -> None:
        if require and not args.get("text") and not args.get("blocks"):
            raise SlackError("no_text")
        if len(str(args.get("text") or "")) > 40000:
            raise SlackError("msg_too_long")
        if "blocks" in args:
            problems = block_problems(args["blocks"], limit=MESSAGE_BLOCK_LIMIT, pointer="/blocks")
            if problems:
                raise SlackError("invalid_blocks", messages=problems)

    # -- methods -------------------------------------------------------------------------------------

    def _auth_test(self, args: dict) -> dict:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "cheqpoint",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0BOT",
            "is_enterprise_install": False,
        }

    def _chat_postMessage(self, args: dict) -> dict:
        channel = args["channel"]
        self._channel(channel, posting=True)
        self._check_message_content(args)
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": "B0BOT",
            "ts": ts,
            "channel": channel,
            "text": args.get("text", ""),
            "blocks": args.get("blocks", []),
            "thread_ts": args.get("thread_ts"),
            "edits": 0,
        }
        if isinstance(args.get("metadata"), dict):  # Slack keeps event_type and event_payload
            message["metadata"] = {key: args["metadata"].get(key) for key in ("event_type", "event_payload")}
        self.messages[channel][ts] = message
        return {"channel": channel, "ts": ts, "message": _public(message)}

    def _chat_update(self, args: dict) -> dict:
        channel, ts = args["channel"], args["ts"]
        self._channel(channel, posting=True)
        message = self.messages[channel].get(ts)
        if message is None:
            raise SlackError("message_not_found")
        self._check_message_content(args, require=False)
        # Slack keeps the old text or blocks when an update leaves them out.
        for key in ("text", "blocks"):
            if key in args:
                message[key] = args[key]
        message["edits"] += 1
        return {"channel": channel, "ts": ts, "text": message["text"], "message": _public(message)}

    def _chat_postEphemeral(self, args: dict) -> dict:
        self._channel(args["channel"], posting=True)
        self._check_message_content(args)
        ts = self._next_ts()
        self.ephemerals.append({**args, "message_ts": ts})
        return {"message_ts": ts}

    def _chat_getPermalink(self, args: dict) -> dict:
        channel, ts = args["channel"], args["message_ts"]
        self._channel(channel, posting=False)
        if ts not in self.messages[channel]:
            raise SlackError("message_not_found")
        return {"channel": channel, "permalink": f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def _views_open(self, args: dict) -> dict:
        self._use_trigger(args)
        return {"view": self._store_view(args["view"])}

    def _views_push(self, args: dict) -> dict:
        self._use_trigger(args)
        return {"view": self._store_view(args["view"])}

    def _views_update(self, args: dict) -> dict:
        view_id = args.get("view_id") or self._view_id_by_external(args.get("external_id"))
        if not args.get("view_id") and not args.get("external_id"):
            raise SlackError("missing_argument", messages=["[ERROR] missing required field: view_id"])
        current = self.views.get(view_id or "")
        if current is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self._store_view(args["view"], view_id=view_id)}

    def _views_publish(self, args: dict) -> dict:
        user_id = args["user_id"]
        current = self.home_views.get(user_id)
        if args.get("hash") and current and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        if not isinstance(args["view"], dict) or args["view"].get("type") != "home":
            raise SlackError("invalid_arguments", messages=["[ERROR] must be home [json-pointer:/view/type]"])
        view = self._store_view(args["view"], view_id=current["id"] if current else None)
        self.home_views[user_id] = view
        return {"view": view}

    def _users_info(self, args: dict) -> dict:
        user = self.users.get(args["user"])
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _usergroups_users_list(self, args: dict) -> dict:
        users = self.usergroups.get(args["usergroup"])
        if users is None:
            raise SlackError("no_such_subteam")
        return {"users": list(users)}

    def _conversations_history(self, args: dict) -> dict:
        """Top-level messages, newest first, within `oldest`/`latest`; metadata only when asked."""
        self._channel(args["channel"], posting=False)
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or "inf")
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [m for ts, m in self.messages[args["channel"]].items()
                 if oldest < float(ts) <= latest and m.get("thread_ts") in (None, ts)]
        found.sort(key=lambda m: float(m["ts"]), reverse=True)
        start = int(args.get("cursor") or 0)
        limit = min(int(args.get("limit") or 100), 999)
        page = found[start:start + limit]
        more = start + limit < len(found)
        messages = [_public(m) if with_metadata else _public({k: v for k, v in m.items() if k != "metadata"})
                    for m in page]
        return {"messages": messages, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _conversations_info(self, args: dict) -> dict:
        return {"channel": self._channel(args["channel"], posting=False) or {"id": args["channel"], "is_im": True}}

    # -- views ---------------------------------------------------------------------------------------

    def _use_trigger(self, args: dict) -> None:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger:
            raise SlackError("missing_argument", messages=["[ERROR] missing required field: trigger_id"])
        if trigger in self._used_triggers:  # Slack lets a trigger open one view only
            raise SlackError("exchanged_trigger_id")
        self._used_triggers.add(trigger)

    def _store_view(self, view: Any, *, view_id: str | None = None) -> dict[str, Any]:
        problems = view_problems(view)
        if problems:
            raise SlackError("invalid_arguments", messages=problems)
        view_id = view_id or f"V{next(self._counter):08d}"
        stored = {
            "state": {"values": {}},
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "hash": f"{time.time():.6f}.{next(self._counter)}",
            "app_id": "A0APP",
            "bot_id": "B0BOT",
        }
        self.views[view_id] = stored
        return stored

    def _view_id_by_external(self, external_id: str | None) -> str | None:
        return next((vid for vid, v in self.views.items() if external_id and v.get("external_id") == external_id), None)


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key not in ("channel", "edits")}
