"""What tenants tells the apps built on it, so that it never imports them.

Both are sent inside the change's transaction; a receiver's writes commit or roll back with it.
"""

from django.dispatch import Signal

# A change to a client workspace made in the public schema (console, invitations, sign-on, API keys):
# client, actor, action, summary, before, after. integrations writes it to the workspace's audit log.
workspace_changed = Signal()

# A suspended client runs again: client. integrations puts each flow's beat entry back by the flow's state.
client_resumed = Signal()
