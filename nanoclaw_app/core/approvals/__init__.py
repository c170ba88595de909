"""Approvals: unknown senders, unregistered chats, agent requests and question answers, all as DM cards."""

from nanoclaw_app.core.approvals.picks import pick_approval_delivery, pick_approver
from nanoclaw_app.core.approvals.requests import ApprovalHandler
from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.db.approvals import PendingApproval

__all__ = ["ApprovalHandler", "ApprovalService", "PendingApproval", "pick_approval_delivery", "pick_approver"]
