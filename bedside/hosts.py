"""Which endpoints may receive patient data (model servers): loopback, private ranges, or
the host named in that endpoint's allow-list setting; and where a completion callback may
go (``callback_address``): a narrower rule, since a callback URL is given by whoever holds
an admin login, and a blind request from the server to its own loopback or to a cloud
metadata address is the classic server-side request forgery."""

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
# An EHR's FHIR server: where CDS Hooks prefetch is completed from, and where write-back
# sends the hook's token.
FHIR_ALLOW_LIST = "BEDSIDE_FHIR_SERVER_ALLOWED_HOSTS"


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


# Cloud instance-metadata services: never a callback's destination, allow-listed or not.
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}


def _callback_refusal(address: str) -> str:
    """Why a callback may not go to this address unless its host is allow-listed ("" when
    it may: a private-range address of the hospital's network)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback (this server itself)"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "not a host address"
    if not ip.is_private:
        return "a public address"
    return ""


def callback_address(url: str, *, allowed_hosts: list[str]) -> str:
    """The address a callback to ``url`` connects to, checked: every address the host
    resolves to must be in a private range (not loopback, link-local or a metadata
    service), unless the host is named in ``BEDSIDE_CALLBACK_ALLOWED_HOSTS`` (then any
    but a metadata service). The caller connects to the address returned, not to the
    name again, so a second DNS answer cannot send the request elsewhere (rebinding).
    Raises ``EndpointRefused`` saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise EndpointRefused(f"{url!r}: scheme must be http or https")
    host = parts.hostname
    if not host:
        raise EndpointRefused(f"{url!r}: no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, ValueError) as exc:
        raise EndpointRefused(f"{host!r} does not resolve ({exc})") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise EndpointRefused(f"{host!r} does not resolve")
    metadata = [a for a in addresses if ipaddress.ip_address(a) in METADATA_ADDRESSES]
    if metadata:
        raise EndpointRefused(f"{host!r} resolves to a cloud metadata address {metadata[0]}")
    if host.lower() not in {h.lower() for h in allowed_hosts}:
        for address in addresses:
            if why := _callback_refusal(address):
                raise EndpointRefused(
                    f"{host!r} resolves to {address} ({why}); a callback goes to a private "
                    f"network address, or to a host named in {CALLBACK_ALLOW_LIST}"
                )
    return addresses[0]


def model_base_urls(value: str) -> list[str]:
    """``BEDSIDE_MODEL_BASE_URL`` names one server or several, comma-separated."""
    return [url.strip() for url in value.split(",") if url.strip()]
