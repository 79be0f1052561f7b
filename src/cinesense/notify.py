"""Messages to people: a Slack incoming webhook.

A webhook URL is a secret (whoever has it can post to the channel), so it never appears
in an error message or a log line written here.
"""

from __future__ import annotations

from cinesense.errors import CinesenseError


class NotificationError(CinesenseError):
    """The message could not be delivered."""


def post_to_slack(webhook_url: str, text: str, timeout_s: float = 10.0) -> None:
    """Post ``text`` to a Slack incoming webhook; a clear error (without the URL) if refused."""
    import httpx

    if not webhook_url.startswith(("https://", "http://")):
        raise NotificationError(
            "The Slack webhook is not an http(s) URL; put the whole webhook URL in the "
            "connection's password field."
        )
    try:
        response = httpx.post(webhook_url, json={"text": text}, timeout=timeout_s)
    except httpx.HTTPError as error:
        raise NotificationError(
            f"Could not reach the Slack webhook ({type(error).__name__})."
        ) from None  # the original error's text holds the URL
    if response.status_code >= 400:
        raise NotificationError(
            f"The Slack webhook refused the message (HTTP {response.status_code}: "
            f"{response.text[:200]})."
        )
