"""DRF's token authentication, with the token and its user read by one hand-written statement
(``TOKEN_USER`` in :mod:`taskcenter.api.queries`, where it says why).

Same rules as ``rest_framework.authentication.TokenAuthentication`` (which it subclasses: header,
keyword, errors): an unknown key is "Invalid token.", an inactive user "User inactive or
deleted.".
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from taskcenter.api.queries import TOKEN_USER, User

_USER_FIELDS = [field.attname for field in TOKEN_USER.columns[2:]]


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        row = TOKEN_USER.first(key)
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = User.from_db(DEFAULT_DB_ALIAS, _USER_FIELDS, row[2:])
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = Token.from_db(DEFAULT_DB_ALIAS, ["key", "created", "user_id"], [row[0], row[1], user.pk])
        token.user = user
        return (user, token)
