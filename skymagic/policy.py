"""Admin policies, under the name a config file uses: `admin_policy: skymagic.policy.NAME`.

The hook and the shipped `DynamicKubernetesContextsUpdatePolicy` live in `skymagic.core.policy`;
this module is the stable path administrators write in `~/.sky/config.yaml` and import from
when they write their own policy.
"""

from __future__ import annotations

from skymagic.core.policy import (
    DynamicKubernetesContextsUpdatePolicy,
    MutatedUserRequest,
    UserRequest,
)

__all__ = ["DynamicKubernetesContextsUpdatePolicy", "MutatedUserRequest", "UserRequest"]
