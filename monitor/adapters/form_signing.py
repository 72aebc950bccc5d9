"""The center's signature on every filed form's PDF (PAdES baseline B, with pyHanko): its key and certificate from
files, and a self-signed development pair made at the default place on first use."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata import model, xmp_xml
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter

from models.clock import SHANGHAI

CENTER_NAME = "云南省职业技能培训监控调度中心"
FIELD_NAME = "CenterSignature"


class ArchivalWriter(IncrementalPdfFileWriter):
    """pyHanko's incremental writer, keeping the XMP metadata equal to the Info dictionary as PDF/A wants (ISO 19005-2
    6.6.2.3): pyHanko appends its name to the Info /Producer ("ReportLab …; pyHanko …") but writes only its own into
    pdf:Producer, and reads the clock once for /ModDate and again for xmp:ModifyDate. Relies on pyHanko's
    `_update_meta` (pyhanko is pinned in requirements.lock); tests/test_form_archive.py compares the two after
    signing."""

    def _update_meta(self) -> None:
        super()._update_meta()  # type: ignore[no-untyped-call]
        stream = self.root["/Metadata"] if "/Metadata" in self.root else None
        info = self._info.get_object() if self._info is not None else None  # type: ignore[no-untyped-call]
        if not isinstance(stream, xmp_xml.MetadataStream) or not isinstance(info, generic.DictionaryObject):
            return
        when = datetime.now(SHANGHAI).replace(microsecond=0)
        info["/ModDate"] = generic.pdf_date(when)
        assert self._info is not None
        self.mark_update(self._info)
        fields = {k: v for root in stream.xmp for k, v in root}
        fields[model.PDF_PRODUCER] = model.XmpValue(str(info["/Producer"]))
        fields[model.XMP_MODDATE] = model.XmpValue(when.isoformat())
        stream._xmp = [model.XmpStructure(fields)]
        stream._reserialise()
        stream._encoded_data = None


class FormSigningKeyMissing(RuntimeError):
    """The configured key or certificate cannot be read: forms cannot be signed (and are not filed unsigned)."""


@dataclass(frozen=True)
class SigningKey:
    key_file: Path
    cert_file: Path


def make_dev_pair(key_file: Path, cert_file: Path, now: datetime | None = None) -> None:
    """A self-signed P-256 key and certificate for development, written owner-only; made in a fresh directory that
    is then renamed into place, so two processes starting at once never see half a pair (the loser's is dropped)."""
    now = now or datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, CENTER_NAME),
                      x509.NameAttribute(NameOID.COMMON_NAME, "检查表签章（开发用，自签名）")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    target = key_file.parent
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".form-signing-", dir=target.parent))
    try:
        fd = os.open(staging / key_file.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        (staging / cert_file.name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        try:
            staging.rename(target)
        except OSError:  # another process made the pair first (or the directory exists): keep theirs
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure_key(key_file: Path, cert_file: Path, dev_allowed: bool) -> SigningKey:
    """The signing key's files; a development pair is made when both are missing at the default place."""
    if dev_allowed and not key_file.exists() and not cert_file.exists() and key_file.parent == cert_file.parent:
        make_dev_pair(key_file, cert_file)
    for path, what in ((key_file, "private key"), (cert_file, "certificate")):
        if not path.is_file():
            raise FormSigningKeyMissing(
                f"form-signing {what} not found at {path}: set MONITOR_FORM_SIGNING_KEY_FILE and "
                f"MONITOR_FORM_SIGNING_CERT_FILE (PEM), or unset both for a development key under the data directory")
    return SigningKey(key_file, cert_file)


@lru_cache(maxsize=4)
def load_signer(key: SigningKey, mtime_ns: int) -> signers.SimpleSigner:
    """The pyHanko signer of a key pair (cached per file version)."""
    signer: signers.SimpleSigner | None = signers.SimpleSigner.load(  # type: ignore[no-untyped-call]
        str(key.key_file), str(key.cert_file), ca_chain_files=(str(key.cert_file),))
    if signer is None:
        raise FormSigningKeyMissing(f"form-signing key {key.key_file} or certificate {key.cert_file} is unreadable")
    return signer


def sign_pdf(pdf: bytes, key: SigningKey, reason: str, location: str = "云南省") -> bytes:
    """`pdf` with the center's PAdES signature over the whole file, as an incremental update."""
    signer = load_signer(key, key.key_file.stat().st_mtime_ns + key.cert_file.stat().st_mtime_ns)
    writer = ArchivalWriter(io.BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(field_name=FIELD_NAME, subfilter=SigSeedSubFilter.PADES,
                                        md_algorithm="sha256", reason=reason, location=location, name=CENTER_NAME)
    out: io.BytesIO = signers.sign_pdf(writer, meta, signer=signer)
    return out.getvalue()
