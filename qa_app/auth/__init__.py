"""Who may use the app: users with argon2-hashed passwords, named API tokens stored as SHA-256 hashes,
two roles (reader, editor), the key that signs session cookies, and the slow-down after failed sign-ins.

Nothing here knows about HTTP: the web layer (`qa_app.web.security`) decides access per request with
these, and the CLI (`qa-app users ...`, `qa-app tokens ...`) edits the files.
"""

from qa_app.auth.accounts import ROLES, Accounts, Principal, TokenFile, UserFile, role_at_least
from qa_app.auth.secret import session_secret
from qa_app.auth.throttle import SignInThrottle

__all__ = ["ROLES", "Accounts", "Principal", "SignInThrottle", "TokenFile", "UserFile", "role_at_least",
           "session_secret"]
