"""Which endpoints may receive patient data (model servers, completion callbacks): loopback,
private ranges, or the host named in that endpoint's allow-list setting."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class EndpointRefused(ValueError):
    """The URL points somewhere patient data must not go."""


def _is_on_premises(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private or ip.is_link_local


MODEL_ALLOW_LIST = "BEDSIDE_MODEL_ALLOWED_HOSTS"
CALLBACK_ALLOW_LIST = "BEDSIDE_CALLBACK_ALLOWED_HOSTS"


def check_model_endpoint(
    url: str, *, allowed_hosts: list[str], setting: str = MODEL_ALLOW_LIST
) -> None:
    """Raise ``EndpointRefused`` unless every address ``url``'s host resolves to is
    loopback or private, or the host is named in ``allowed_hosts``. ``setting`` names the
    setting ``allowed_hosts`` came from, so the refusal tells the operator what to change."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise EndpointRefused(f"{url!r}: scheme must be http or https")
    host = parts.hostname
    if not host:
        raise EndpointRefused(f"{url!r}: no host")
    if host.lower() in {h.lower() for h in allowed_hosts}:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise EndpointRefused(
            f"{host!r} does not resolve ({exc}); name it in {setting} if it is a hospital host"
        ) from exc
    public = sorted({str(info[4][0]) for info in infos if not _is_on_premises(str(info[4][0]))})
    if public:
        raise EndpointRefused(
            f"{host!r} resolves to public address(es) {', '.join(public)}; only loopback, "
            f"private ranges or hosts in {setting} may receive patient data"
        )


def model_base_urls(value: str) -> list[str]:
    """``BEDSIDE_MODEL_BASE_URL`` names one server or several, comma-separated."""
    return [url.strip() for url in value.split(",") if url.strip()]
