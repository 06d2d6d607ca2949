"""The committed gRPC code must be exactly what the proto generates."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ("inventory_pb2.py", "inventory_pb2.pyi", "inventory_pb2_grpc.py")


def test_generated_grpc_code_matches_the_proto(tmp_path):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "protos"),
                    f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}",
                    str(ROOT / "protos/valerix/inventory/v1/inventory.proto")], check=True)
    for name in GENERATED:
        fresh = (tmp_path / "valerix/inventory/v1" / name).read_text()
        committed = (ROOT / "services/valerix/inventory/v1" / name).read_text()
        assert fresh == committed, f"{name} is stale: run scripts/gen-proto"


def test_import_boundaries_hold():
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
