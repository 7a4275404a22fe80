"""A real OpenLDAP directory for the tests, as a hospital's would be: Debian's ``slapd``
on a port of its own, an mdb database in a temporary folder, seeded with people and
groups, plain LDAP and LDAPS (a certificate from a CA the fixture makes with openssl).

The seeded hospital (``dc=hospital,dc=local``):

- ``uid=dr.ward`` (Dana Ward): in ``cn=ed-physicians`` (the clinicians' group)
- ``uid=aud.smith`` (Alex Smith): in ``cn=compliance`` (the auditors' group)
- ``uid=nurse.jones`` (Jo Jones): in ``cn=nursing``, which no role is mapped to
- ``uid=dr.gone`` (Gil Gone): in ``cn=ed-physicians`` but disabled (``employeeType:
  disabled``; the user filter below leaves such entries out, as AD's filter leaves out
  accounts with the ACCOUNTDISABLE bit)
- ``cn=bedside,ou=services``: Bedside's read-only service account

Every person's password is ``PASSWORDS[uid]``. ``make test`` installs ``slapd`` and
``ldap-utils`` (``make install-directory``); without them the fixture fails, naming them.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


class _PythonLdap:
    """python-ldap, imported at first use: it is the optional `directory` extra, and this
    module is imported whenever pytest collects the directory tests (``make test-fast``
    collects them and deselects them, on machines without the extra too)."""

    def __getattr__(self, name: str) -> Any:
        try:
            import ldap
            import ldap.modlist
        except ImportError as exc:
            raise RuntimeError(
                "the directory tests need python-ldap: `make install-directory` installs it "
                "(the `directory` extra) with Debian's slapd and ldap-utils"
            ) from exc
        return getattr(ldap, name)


ldap: Any = _PythonLdap()

SUFFIX = "dc=hospital,dc=local"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "directory-root-secret"
SERVICE_DN = f"cn=bedside,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "bedside service secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ED_PHYSICIANS = f"cn=ed-physicians,{GROUPS}"
COMPLIANCE = f"cn=compliance,{GROUPS}"
NURSING = f"cn=nursing,{GROUPS}"
# What a hospital running OpenLDAP writes: people marked disabled are not found.
USER_FILTER = "(&(objectClass=inetOrgPerson)(uid=%(user)s)(!(employeeType=disabled)))"
ROLE_GROUPS = f"clinician={ED_PHYSICIANS};auditor={COMPLIANCE}"
# groupOfNames needs one member at least: every group keeps this one, as many directories do.
PLACEHOLDER_MEMBER = f"cn=nobody,{SUFFIX}"
PASSWORDS = {
    "dr.ward": "ward directory pass",
    "aud.smith": "smith directory pass",
    "nurse.jones": "jones directory pass",
    "dr.gone": "gone directory pass",
}
_PEOPLE = {
    "dr.ward": ("Dana", "Ward", ""),
    "aud.smith": ("Alex", "Smith", ""),
    "nurse.jones": ("Jo", "Jones", ""),
    "dr.gone": ("Gil", "Gone", "disabled"),
}
_MEMBERS = {
    "ed-physicians": ["dr.ward", "dr.gone"],
    "compliance": ["aud.smith"],
    "nursing": ["nurse.jones"],
}


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def _seed_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
        "o: Hospital\ndc: hospital",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: bedside\nuserPassword: {SERVICE_PASSWORD}",
    ]
    for uid, (given, surname, kind) in _PEOPLE.items():
        entry = (
            f"dn: {person_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {given} {surname}\ngivenName: {given}\nsn: {surname}\n"
            f"mail: {uid}@hospital.local\nuserPassword: {PASSWORDS[uid]}"
        )
        if kind:
            entry += f"\nemployeeType: {kind}"
        entries.append(entry)
    for group, members in _MEMBERS.items():
        dns = [PLACEHOLDER_MEMBER, *(person_dn(uid) for uid in members)]
        lines = "\n".join(f"member: {dn}" for dn in dns)
        entries.append(f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n{lines}")
    return "\n\n".join(entries) + "\n"


def _slapd_conf(folder: Path, tls: dict[str, Path]) -> str:
    return f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {folder}/slapd.pid
TLSCACertificateFile {tls["ca"]}
TLSCertificateFile {tls["cert"]}
TLSCertificateKeyFile {tls["key"]}

database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {folder}/data
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{SERVICE_DN}" read by self read by * none
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tls_files(folder: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    files = {name: folder / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key", "csr")}
    ext = folder / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=Hospital test CA", "-keyout", str(files["ca-key"]),
            "-out", str(files["ca"]))  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(files["key"]), "-out", str(files["csr"]))  # fmt: skip
    openssl("x509", "-req", "-in", str(files["csr"]), "-CA", str(files["ca"]), "-CAkey",
            str(files["ca-key"]), "-CAcreateserial", "-days", "2", "-extfile", str(ext),
            "-out", str(files["cert"]))  # fmt: skip
    return files


@dataclass
class DirectoryServer:
    """A running slapd: its addresses, its CA, and a root connection to change it."""

    folder: Path
    port: int
    tls_port: int
    ca_file: Path
    version: str
    slapd: str = "slapd"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def settings(self) -> dict[str, Any]:
        """The Bedside settings that point at this directory (plain LDAP)."""
        return {
            "BEDSIDE_LDAP_URI": self.uri,
            "BEDSIDE_LDAP_BIND_DN": SERVICE_DN,
            "BEDSIDE_LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
            "BEDSIDE_LDAP_USER_SEARCH_BASE": PEOPLE,
            "BEDSIDE_LDAP_USER_FILTER": USER_FILTER,
            "BEDSIDE_LDAP_GROUP_SEARCH_BASE": GROUPS,
            "BEDSIDE_LDAP_GROUP_TYPE": "groupOfNames",
            "BEDSIDE_LDAP_ROLE_GROUPS": ROLE_GROUPS,
            "BEDSIDE_LDAP_START_TLS": False,
            "BEDSIDE_LDAP_CA_FILE": "",
            "BEDSIDE_LDAP_TIMEOUT_S": 3,
            "BEDSIDE_LDAP_RECHECK_S": 300,
        }

    def root(self) -> Any:
        conn = ldap.initialize(self.uri)
        conn.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
        return conn

    def remove_member(self, group_dn: str, uid: str) -> None:
        conn = self.root()
        conn.modify_s(group_dn, [(ldap.MOD_DELETE, "member", [person_dn(uid).encode()])])
        conn.unbind_s()

    def add_member(self, group_dn: str, uid: str) -> None:
        conn = self.root()
        conn.modify_s(group_dn, [(ldap.MOD_ADD, "member", [person_dn(uid).encode()])])
        conn.unbind_s()

    def disable(self, uid: str) -> None:
        conn = self.root()
        conn.modify_s(person_dn(uid), [(ldap.MOD_REPLACE, "employeeType", [b"disabled"])])
        conn.unbind_s()

    def enable(self, uid: str) -> None:
        conn = self.root()
        with contextlib.suppress(ldap.NO_SUCH_ATTRIBUTE):  # never disabled
            conn.modify_s(person_dn(uid), [(ldap.MOD_DELETE, "employeeType", None)])
        conn.unbind_s()

    def reset(self) -> None:
        """Back to the seeded hospital: every group's members, who is disabled, who exists."""
        conn = self.root()
        for uid, (given, surname, kind) in _PEOPLE.items():
            try:
                conn.search_s(person_dn(uid), ldap.SCOPE_BASE)
            except ldap.NO_SUCH_OBJECT:
                attrs = {
                    "objectClass": [b"inetOrgPerson"],
                    "uid": [uid.encode()],
                    "cn": [f"{given} {surname}".encode()],
                    "givenName": [given.encode()],
                    "sn": [surname.encode()],
                    "userPassword": [PASSWORDS[uid].encode()],
                }
                conn.add_s(person_dn(uid), ldap.modlist.addModlist(attrs))
            kinds = [kind.encode()] if kind else None
            conn.modify_s(person_dn(uid), [(ldap.MOD_REPLACE, "employeeType", kinds)])
        for group, members in _MEMBERS.items():
            values = [dn.encode() for dn in (PLACEHOLDER_MEMBER, *map(person_dn, members))]
            conn.modify_s(f"cn={group},{GROUPS}", [(ldap.MOD_REPLACE, "member", values)])
        conn.unbind_s()

    def remove_person(self, uid: str) -> None:
        conn = self.root()
        for group, members in _MEMBERS.items():
            if uid in members:
                conn.modify_s(
                    f"cn={group},{GROUPS}", [(ldap.MOD_DELETE, "member", [person_dn(uid).encode()])]
                )
        conn.delete_s(person_dn(uid))
        conn.unbind_s()

    def start(self) -> None:
        server_down = ldap.SERVER_DOWN  # python-ldap first: no slapd left running without it
        listen = f"{self.uri}/ {self.ldaps_uri}/"
        self.process = subprocess.Popen(
            [self.slapd, "-d", "0", "-h", listen, "-f", str(self.folder / "slapd.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "slapd.log").open("ab"),
        )
        deadline = time.monotonic() + 20
        try:
            while True:
                try:
                    self.root().unbind_s()
                    return
                except server_down:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log = (self.folder / "slapd.log").read_text(errors="replace")
                        raise RuntimeError(f"slapd did not start: {log[-2000:]}") from None
                    time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def start_directory(folder: Path) -> DirectoryServer:
    slapd = shutil.which("slapd") or ("/usr/sbin/slapd" if Path("/usr/sbin/slapd").exists() else "")
    slapadd = shutil.which("slapadd", path="/usr/sbin:/usr/bin") or ""
    if not slapd or not slapadd:
        raise RuntimeError(
            "the directory tests need OpenLDAP's slapd: `make install-directory` installs "
            "Debian's slapd and ldap-utils (sudo apt-get install slapd ldap-utils)"
        )
    (folder / "data").mkdir(parents=True)
    tls = _tls_files(folder)
    conf = folder / "slapd.conf"
    conf.write_text(_slapd_conf(folder, tls))
    seed = folder / "seed.ldif"
    seed.write_text(_seed_ldif())
    subprocess.run([slapadd, "-f", str(conf), "-l", str(seed)], check=True, capture_output=True)
    version = subprocess.run([slapd, "-VV"], capture_output=True, text=True)
    server = DirectoryServer(
        folder=folder,
        port=free_port(),
        tls_port=free_port(),
        ca_file=tls["ca"],
        version=(version.stdout + version.stderr).strip().splitlines()[0],
        slapd=slapd,
    )
    server.start()
    return server


DIRECTORY_BACKEND = "bedside.accounts.directory.DirectorySignInBackend"
RECHECK_MIDDLEWARE = "bedside.accounts.directory.DirectoryRecheckMiddleware"


def directory_settings_apply(settings: Any, server: DirectoryServer, **overrides: Any) -> None:
    """What bedside/settings.py does when BEDSIDE_LDAP_URI is set, on pytest-django's
    ``settings``: the directory's settings, its backend before the local one, the re-check
    middleware below the authentication middleware, and the app's sign-in receiver."""
    from bedside.accounts import directory

    for name, value in {**server.settings(), **overrides}.items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [DIRECTORY_BACKEND, "bedside.accounts.sign_in.SignInBackend"]
    middleware = [m for m in settings.MIDDLEWARE if m != RECHECK_MIDDLEWARE]
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    settings.MIDDLEWARE = [*middleware[: auth + 1], RECHECK_MIDDLEWARE, *middleware[auth + 1 :]]
    directory.check_configuration()
    directory.connect()


# Named apart from their fixtures, so a test module imports them and still takes
# ``directory`` as a parameter.
@pytest.fixture(name="directory")
def directory_fixture(
    directory_server: DirectoryServer, settings: Any, db: None
) -> Iterator[DirectoryServer]:
    """The seeded directory, and Bedside signing people in with it; the directory is put
    back as seeded afterwards."""
    directory_settings_apply(settings, directory_server)
    try:
        yield directory_server
    finally:
        directory_server.reset()


@pytest.fixture(scope="session", name="directory_server")
def directory_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DirectoryServer]:
    server = start_directory(tmp_path_factory.mktemp("slapd"))
    try:
        yield server
    finally:
        server.stop()
