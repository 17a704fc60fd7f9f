"""Outgoing e-mail. In production this talks to an SMTP relay."""

SENT: list[dict] = []


def send(to: str, subject: str, body: str, *, reply_to: str = "orders@shop.example") -> None:
    """Send an e-mail (recorded in SENT instead of really sending it).

    `reply_to` was added in 0.2; callers now always pass it explicitly.
    """
    SENT.append({"to": to, "subject": subject, "body": body, "reply_to": reply_to})
