"""Markdown API reference generated from the proto files' own comments.

`make protos` runs it after code generation, so docs/api/ always matches the
contracts (and `make protos-check` fails in CI when it does not).
Usage: python -m cxloop_libs.apidoc protos docs/api
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

# SourceCodeInfo paths (descriptor.proto field numbers).
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _VALUE, _METHOD = 2, 2, 2


def _comments(fd: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    out: dict[tuple[int, ...], str] = {}
    for loc in fd.source_code_info.location:
        text = (loc.leading_comments or loc.trailing_comments).strip()
        if text:
            out[tuple(loc.path)] = " ".join(line.strip() for line in text.splitlines())
    return out


def _type_name(f: descriptor_pb2.FieldDescriptorProto) -> str:
    if f.type_name:
        name = f.type_name.lstrip(".")
    else:
        name = descriptor_pb2.FieldDescriptorProto.Type.Name(f.type)[5:].lower()
    if f.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        return f"repeated {name}"
    return name


def render_file(fd: descriptor_pb2.FileDescriptorProto) -> str:
    c = _comments(fd)
    lines = [f"# `{fd.name}`", "", f"Package `{fd.package}`.", ""]
    for si, svc in enumerate(fd.service):
        lines += [f"## service `{svc.name}`", "", c.get((_SERVICE, si), ""), ""]
        lines += ["| RPC | request | response | what |", "|---|---|---|---|"]
        for mi, m in enumerate(svc.method):
            req = ("stream " if m.client_streaming else "") + m.input_type.lstrip(".").split(".")[
                -1
            ]
            res = ("stream " if m.server_streaming else "") + m.output_type.lstrip(".").split(".")[
                -1
            ]
            what = c.get((_SERVICE, si, _METHOD, mi), "")
            lines.append(f"| `{m.name}` | `{req}` | `{res}` | {what} |")
        lines.append("")
    for mi, msg in enumerate(fd.message_type):
        lines += [f"## message `{msg.name}`", "", c.get((_MESSAGE, mi), ""), ""]
        if msg.field:
            lines += ["| field | type | meaning |", "|---|---|---|"]
            for fi, f in enumerate(msg.field):
                lines.append(
                    f"| `{f.name}` | `{_type_name(f)}` | {c.get((_MESSAGE, mi, _FIELD, fi), '')} |"
                )
            lines.append("")
    for ei, en in enumerate(fd.enum_type):
        lines += [f"## enum `{en.name}`", "", c.get((_ENUM, ei), ""), ""]
        lines += ["| value | number | meaning |", "|---|---|---|"]
        for vi, v in enumerate(en.value):
            lines.append(f"| `{v.name}` | {v.number} | {c.get((_ENUM, ei, _VALUE, vi), '')} |")
        lines.append("")
    return "\n".join(line for line in lines).rstrip() + "\n"


def generate(proto_root: Path, out_dir: Path) -> list[Path]:
    files = sorted(p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        desc = Path(tmp) / "set.pb"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{proto_root}",
                "--include_source_info",
                f"--descriptor_set_out={desc}",
                *files,
            ],
            check=True,
        )
        fds = descriptor_pb2.FileDescriptorSet.FromString(desc.read_bytes())
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.md"):
        old.unlink()
    written = []
    index = ["# API reference", "", "Generated from `protos/` by `make protos`.", ""]
    for fd in fds.file:
        name = fd.name.removesuffix(".proto").replace("/", "_") + ".md"
        (out_dir / name).write_text(render_file(fd))
        written.append(out_dir / name)
        index.append(f"- [`{fd.name}`]({name})")
    (out_dir / "README.md").write_text("\n".join(index) + "\n")
    return written


if __name__ == "__main__":
    generate(Path(sys.argv[1]), Path(sys.argv[2]))
