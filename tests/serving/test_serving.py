"""The in-process TF-Serving stand-in and the clients: round trips over gRPC and REST, every bad request."""

import io
import json
import os
import shutil
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from legan_tf import pretrained
from legan_tf.serving import export
from legan_tf.serving.client import GrpcClient, RestClient, ServingError, edit_faces, score_faces
from legan_tf.serving.server import Server
from tests.serving.conftest import LABEL_NAMES, SIZE, face, png_bytes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT = os.path.join(REPO, "serving", "client.py")
MAX_REQUEST = 1 << 20  # the server's request limit here (64 MiB by default): large enough for every test request


@pytest.fixture(scope="module")
def live_dir(serving_dir, tmp_path_factory):
    """A copy of the export this module may add versions to."""
    root = tmp_path_factory.mktemp("live") / "models"
    shutil.copytree(serving_dir, root)
    return root


@pytest.fixture(scope="module")
def server(live_dir):
    server = Server(str(live_dir), grpc_port=0, rest_port=0, max_request_bytes=MAX_REQUEST)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["grpc", "rest"])
def client(request, server):
    if request.param == "grpc":
        client = GrpcClient(f"127.0.0.1:{server.grpc_port}", timeout=60)
    else:
        client = RestClient(f"127.0.0.1:{server.rest_port}", timeout=60)
    yield client
    client.close()


def _direct(live_dir, name, signature, **inputs):
    return tf.saved_model.load(str(live_dir / name / "1")).signatures[signature](**inputs)


def test_edit_round_trip_gives_the_savedmodels_png_bytes(client, live_dir):
    faces = [png_bytes(face(0)), png_bytes(face(1, 40, 60))]
    edited = edit_faces(client, "legan", faces, expression=["smile", "surprise"], lighting="02")
    direct = _direct(live_dir, "legan", "serving_default", images_bytes=tf.constant(faces),
                     expression=tf.constant(["smile", "surprise"]), lighting=tf.constant(["02", "02"]))
    assert edited == list(direct["images_bytes"].numpy())  # the same graph on the same input: the same bytes
    assert [Image.open(io.BytesIO(png)).size for png in edited] == [(SIZE, SIZE), (40, 40)]


def test_float_and_score_signatures_through_the_server_equal_the_savedmodel(client, live_dir):
    images = np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    labels = np.eye(7, dtype=np.float32)[[0, 2]] + np.eye(7, dtype=np.float32)[[3, 6]]
    got = client.predict("legan", {"images": images, "labels": labels}, signature="translate")["images"]
    expected = _direct(live_dir, "legan", "translate", images=images, labels=labels)["images"].numpy()
    # gRPC carries float32 bit for bit; REST prints floats as JSON with float64's shortest repr, also exact.
    np.testing.assert_array_equal(got, expected)
    scores = score_faces(client, "quality", [png_bytes(face(4))])
    assert scores.shape == (1,) and np.isfinite(scores).all()
    classified = client.predict("classifier", {"images_bytes": [png_bytes(face(5))]})
    assert classified["expression"][0] in (b"neutral", b"smile", b"surprise")
    np.testing.assert_allclose(classified["lighting_probabilities"].sum(-1), 1.0, rtol=1e-6)  # softmax, float32
    assert client.predict("identity", {"images_bytes": [png_bytes(face(6))]})["embedding"].shape == (1, 8)


U = 2.0 ** -24  # float32's unit roundoff


@pytest.fixture(scope="module")
def keras_models(tiny_run):
    """The run's own Keras models, the ones the export serves."""
    import keras

    return {name: keras.models.load_model(str(tiny_run / f"{file}.keras"))
            for name, file in (("quality", "quality_model"), ("classifier", "attribute_classifier"),
                               ("identity", "identity_model"))}


def _reordering_bound(model):
    """Bound on |served - Keras| relative to the outputs' scale, for a float32 model run as a SavedModel graph
    and eagerly by Keras.

    Both run the same float32 layers on the same input; the graph may fuse kernels (conv + bias + activation)
    or sum a layer's products in another order. A layer with fan-in n sums n products: re-ordered, the sum
    moves by about sqrt(n) u of sum|products| (independent roundings add as a random walk), and for these
    untrained networks sum|products| is about sqrt(n) times the layer's output scale (products of random sign),
    so by n u of the output scale; to first order the layers' errors add: sum over layers of n u.
    """
    return sum(int(np.prod(weight.shape[:-1])) for weight in model.weights if weight.path.endswith("kernel")) * U


def test_score_classify_and_embed_through_the_server_equal_the_keras_models(client, keras_models):
    import keras

    rng = np.random.default_rng(1)
    # At the models' size: the float signatures resize nothing.
    images = rng.uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)

    quality = keras_models["quality"]
    expected = keras.ops.convert_to_numpy(quality(images, training=False)).reshape(-1)
    got = client.predict("quality", {"images": images}, signature="score")["quality"]
    assert got.shape == (3,)
    np.testing.assert_allclose(got, expected, rtol=0, atol=_reordering_bound(quality) * np.abs(expected).max())

    classifier = keras_models["classifier"]
    logits = {name: keras.ops.convert_to_numpy(value).astype(np.float64)
              for name, value in classifier(images, training=False).items()}
    got = client.predict("classifier", {"images": images}, signature="classify")
    assert set(got) == {f"{name}{suffix}" for name in logits for suffix in ("", "_probabilities")}
    for name, values in logits.items():
        tolerance = _reordering_bound(classifier) * np.abs(values).max()  # on the logits
        probabilities = np.exp(values - values.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        # d p_i / d z_j = p_i (delta_ij - p_j): a logit error e moves each probability by at most
        # 2 p_i (1 - p_i) e <= e / 2; the float32 softmax itself (exp, a sum of <= 4, a division) adds < 8 u.
        np.testing.assert_allclose(got[f"{name}_probabilities"], probabilities, rtol=0, atol=tolerance / 2 + 8 * U)
        names = np.array(LABEL_NAMES[name], object)
        ranked = np.sort(values, -1)
        clear = ranked[:, -1] - ranked[:, -2] > 2 * tolerance  # a near tie may go either way within the bound
        assert list(got[name][clear]) == [n.encode() for n in names[values.argmax(-1)][clear]]
        assert all(n.decode() in names[np.argsort(v)[-2:]] for n, v in zip(got[name], values))

    identity = keras_models["identity"]
    faces = images[:, ::2, ::2]  # the network's own input size (16 px): no resize inside f either
    assert faces.shape[1] == identity.input_size
    expected = keras.ops.convert_to_numpy(identity(faces, training=False))
    got = client.predict("identity", {"images": faces}, signature="embed")["embedding"]
    assert got.shape == expected.shape == (3, 8)
    np.testing.assert_allclose(got, expected, rtol=0, atol=_reordering_bound(identity) * np.abs(expected).max())


def test_metadata_lists_the_signatures_with_their_inputs(client):
    signatures = client.signatures("legan")
    assert set(signatures) == {"serving_default", "translate"}
    assert signatures["serving_default"]["inputs"] == {"images_bytes": "string", "expression": "string",
                                                       "lighting": "string"}
    assert signatures["translate"]["outputs"] == {"images": "float32"}


BAD_REQUESTS = [
    # (what, model, inputs, signature, code, words the message must contain)
    ("unknown label name", "legan", {"images_bytes": [b"x"], "expression": ["laugh"], "lighting": ["00"]},
     "serving_default", "INVALID_ARGUMENT", "unknown expression name(s): laugh"),
    ("undecodable bytes", "legan", {"images_bytes": [b"not an image"], "expression": ["smile"], "lighting": ["00"]},
     "serving_default", "INVALID_ARGUMENT", "Unknown image file format"),
    ("empty batch", "legan", {"images_bytes": [], "expression": [], "lighting": []},
     "serving_default", "INVALID_ARGUMENT", "empty batch"),
    ("wrong rank", "legan", {"images": np.zeros((2, SIZE, SIZE), np.float32), "labels": np.zeros((2, 7), np.float32)},
     "translate", "INVALID_ARGUMENT", "'images' must have rank 4"),
    ("wrong size", "quality", {"images": np.zeros((1, 16, 16, 3), np.float32)},
     "score", "INVALID_ARGUMENT", "dimension 1 must be 32"),
    ("missing input", "legan", {"images_bytes": [b"x"]}, "serving_default", "INVALID_ARGUMENT",
     "missing input(s) 'expression', 'lighting'"),
    ("unknown input", "quality", {"images_bytes": [b"x"], "extra": [b"y"]}, "serving_default", "INVALID_ARGUMENT",
     "no input 'extra'"),
    ("unknown signature", "legan", {"images_bytes": [b"x"]}, "edit", "INVALID_ARGUMENT",
     'signature key "edit" not found'),
    ("unknown model", "nobody", {"images_bytes": [b"x"]}, "serving_default", "NOT_FOUND", "Servable not found"),
]


@pytest.mark.parametrize("what, model, inputs, signature, code, words", BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_a_bad_request_is_refused_with_a_message_naming_the_fault(client, what, model, inputs, signature, code, words):
    if what == "unknown label name":
        inputs = dict(inputs, images_bytes=[png_bytes(face())])
    with pytest.raises(ServingError) as raised:
        client.predict(model, inputs, signature=signature)
    assert raised.value.code == code and words in raised.value.message, (raised.value.code, raised.value.message)
    # The server goes on answering valid requests.
    assert score_faces(client, "quality", [png_bytes(face(7))]).shape == (1,)


def test_wrong_dtype_over_grpc_is_refused(server):
    client = GrpcClient(f"127.0.0.1:{server.grpc_port}")
    with pytest.raises(ServingError, match="INVALID_ARGUMENT: input 'images' must be float32, got int32"):
        client.predict("quality", {"images": np.zeros((1, SIZE, SIZE, 3), np.int32)}, signature="score")


def _post(server, path, body: bytes):
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_rest_refuses_malformed_json_strings_for_floats_and_huge_bodies_with_status_and_message(server):
    status, reply = _post(server, "/v1/models/quality:predict", b"{not json")
    assert status == 400 and "not JSON" in reply["error"]
    status, reply = _post(server, "/v1/models/quality:predict",
                          json.dumps({"signature_name": "score", "inputs": {"images": [["a"]]}}).encode())
    assert status == 400 and "'images' is not a float32 tensor" in reply["error"]
    status, reply = _post(server, "/v1/models/quality:predict", json.dumps({"inputs": {"images_bytes": [{"b64": "%%"}]}}).encode())
    assert status == 400 and "not valid base64" in reply["error"]
    status, reply = _post(server, "/v1/models/nobody:predict", b"{}")
    assert status == 404
    status, reply = _post(server, "/v1/models/quality:predict", b" " * (MAX_REQUEST + 1))
    assert status == 413 and f"at most {MAX_REQUEST}" in reply["error"]


def test_an_oversized_grpc_request_is_resource_exhausted_and_the_server_goes_on(server):
    client = GrpcClient(f"127.0.0.1:{server.grpc_port}")
    with pytest.raises(ServingError) as raised:
        client.predict("quality", {"images_bytes": [b"x" * (MAX_REQUEST + 1)]})
    assert raised.value.code == "RESOURCE_EXHAUSTED"
    assert score_faces(client, "quality", [png_bytes(face(7))]).shape == (1,)


def test_rest_row_format_instances_as_tf_serving_documents(server):
    import base64

    png = base64.b64encode(png_bytes(face(8))).decode()
    body = {"instances": [{"images_bytes": {"b64": png}, "expression": "smile", "lighting": "01"}]}
    status, reply = _post(server, "/v1/models/legan:predict", json.dumps(body).encode())
    assert status == 200 and len(reply["predictions"]) == 1
    assert Image.open(io.BytesIO(base64.b64decode(reply["predictions"][0]["b64"]))).size == (SIZE, SIZE)


def test_a_version_exported_while_serving_becomes_the_latest(server, tiny_run, live_dir):
    export.export_run(str(tiny_run), str(live_dir), kinds=("quality",))
    client = GrpcClient(f"127.0.0.1:{server.grpc_port}")
    assert score_faces(client, "quality", [png_bytes(face(9))]).shape == (1,)
    version, _ = server.repository.get("quality")
    assert version == 2
    assert client.predict("quality", {"images_bytes": [png_bytes(face(9))]}, version=1)["quality"].shape == (1,)
    with pytest.raises(ServingError, match="NOT_FOUND"):
        client.predict("quality", {"images_bytes": [png_bytes(face(9))]}, version=7)


def test_no_server_is_a_clear_unavailable_error():
    with pytest.raises(ServingError, match="UNAVAILABLE: no server answers at 127.0.0.1:9"):
        GrpcClient("127.0.0.1:9", timeout=5).predict("legan", {"images_bytes": [b"x"]})
    with pytest.raises(ServingError, match="UNAVAILABLE: no server answers at http://127.0.0.1:9"):
        RestClient("127.0.0.1:9", timeout=5).predict("legan", {"images_bytes": [b"x"]})


def test_client_command_edits_a_face_scores_and_fails_clearly(server, tmp_path):
    image = tmp_path / "face.png"
    image.write_bytes(png_bytes(face(10)))
    output = tmp_path / "edited.png"
    run = lambda *args: subprocess.run([sys.executable, CLIENT, *args], capture_output=True, text=True,  # noqa: E731
                                       timeout=120, cwd=REPO)
    result = run(f"--server=127.0.0.1:{server.grpc_port}", "--model=legan", f"--image={image}", "--expression=smile",
                 "--lighting=02", f"--output={output}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(output).size == (SIZE, SIZE)
    result = run("--protocol=rest", f"--server=127.0.0.1:{server.rest_port}", "--model=classifier", f"--image={image}")
    assert result.returncode == 0 and "expression " in result.stdout and "(p=" in result.stdout, result.stderr[-2000:]
    result = run(f"--server=127.0.0.1:{server.grpc_port}", "--model=legan", f"--image={image}", "--expression=laugh",
                 "--lighting=02", f"--output={output}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: INVALID_ARGUMENT: unknown expression name(s): laugh")


def _free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_server_command_serves_a_folder_and_refuses_a_broken_one(serving_dir, tmp_path):
    import time

    grpc_port, rest_port = _free_port(), _free_port()
    server = subprocess.Popen([sys.executable, os.path.join(REPO, "serving", "server.py"), f"--model_dir={serving_dir}",
                               f"--grpc_port={grpc_port}", f"--rest_port={rest_port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline:  # the readiness line comes after every model has loaded
            line = server.stdout.readline()
            lines.append(line)
            if line.startswith("serving gRPC") or not line:
                break
        assert lines[-1].startswith(f"serving gRPC on 127.0.0.1:{grpc_port}"), lines
        assert any(line.startswith("model legan: version 1") for line in lines)
        scores = score_faces(GrpcClient(f"127.0.0.1:{grpc_port}"), "quality", [png_bytes(face(12))])
        assert scores.shape == (1,)
    finally:
        server.terminate()
        server.wait(timeout=30)

    broken = tmp_path / "broken"
    (broken / "legan" / "1").mkdir(parents=True)
    (broken / "legan" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    result = subprocess.run([sys.executable, os.path.join(REPO, "serving", "server.py"), f"--model_dir={broken}",
                             "--grpc_port=-1", "--rest_port=-1"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith(f"error: cannot load {broken}/legan")


# The server alone in a process of its own, with this module's request limit: the burst test reads that
# process's memory, which holds nothing but the server (no client, no other test's leftovers).
_LONE_SERVER = """
import sys
from legan_tf.serving.server import Server
server = Server(sys.argv[1], grpc_port=0, rest_port=0, max_request_bytes=int(sys.argv[2]))
print(*server.start(), flush=True)
sys.stdin.read()  # serves until the test closes its standard input
server.stop()
"""


@pytest.fixture
def lone_server(serving_dir):
    """(process id, gRPC port, REST port) of a Server over the export, alone in its own process."""
    # -c with the repository as the working directory: this checkout's legan_tf is the one imported.
    process = subprocess.Popen([sys.executable, "-c", _LONE_SERVER, str(serving_dir), str(MAX_REQUEST)], cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        ports = process.stdout.readline().split()
        assert len(ports) == 2, f"the server process did not start (exit status {process.poll()})"
        yield process.pid, int(ports[0]), int(ports[1])
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _rss_bytes(pid):
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


CLIENTS, ROUNDS = 8, 10


def _burst(grpc_port, rest_port, expected):
    """CLIENTS clients at once, half over gRPC and half over REST, each sending a malformed, an oversized (4
    request limits) and a valid request in turn, ROUNDS times: [(kind, code or the valid score's difference)]."""
    import concurrent.futures

    malformed = {"images_bytes": [b"not an image"]}
    oversized = {"images_bytes": [b"x" * (4 * MAX_REQUEST)]}

    def client_session(index):
        client = (GrpcClient(f"127.0.0.1:{grpc_port}", timeout=120) if index % 2 == 0
                  else RestClient(f"127.0.0.1:{rest_port}", timeout=120))
        outcomes = []
        try:
            for _ in range(ROUNDS):
                for kind, inputs in (("malformed", malformed), ("oversized", oversized)):
                    try:
                        client.predict("quality", inputs)
                        outcomes.append((kind, "OK"))
                    except ServingError as error:
                        outcomes.append((kind, error.code))
                scores = score_faces(client, "quality", [png_bytes(face(7))])
                outcomes.append(("valid", float(np.abs(scores - expected).max())))
        finally:
            client.close()
        return outcomes

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        return [outcome for session in pool.map(client_session, range(CLIENTS)) for outcome in session]


def test_a_burst_of_bad_oversized_and_valid_requests_from_many_clients(lone_server):
    """8 clients at once, over gRPC and REST, each sending malformed, oversized and valid requests in turn
    (240 in a burst). Every bad one is refused with its code, every valid one is answered with the same
    scores as alone, and the server answers afterwards.

    Memory: the server runs alone in its own process (lone_server), whose resident size is read before and
    after a second, identical burst. The first burst brings that process to its working size (the allocator's
    arenas for the handler threads, gRPC's buffers, the model's traced function at batch 1), so what a second
    burst adds is what the server keeps from it. An oversized request (4 request limits, 4 MiB; over REST
    base64 in JSON, 4/3 of that) is refused from its declared size: gRPC reads the message's length prefix,
    the REST handler drops the body in 64 KiB chunks. A server that kept them would keep the burst's 80: at
    least 80 x 4 MiB = 320 MiB. Without a leak the most the second burst can add is what is in flight at once
    and not already reached by the first: one oversized request per client, in at most two copies in the
    server (the transport's buffer and the handler's read) and at most 16/3 MiB each, 8 x 2 x 16/3 MiB =
    85 MiB. The bound, 96 MiB, is under a third of what keeping the oversized requests would add, and under half
    of what keeping only REST's would (40 x 16/3 MiB = 213 MiB). (Measured: a second burst adds 1-3 MiB; a REST
    handler made to keep what it reads adds 200-225 MiB every burst.)"""
    pid, grpc_port, rest_port = lone_server
    expected = score_faces(GrpcClient(f"127.0.0.1:{grpc_port}"), "quality", [png_bytes(face(7))])
    warm_up = _burst(grpc_port, rest_port, expected)
    before = _rss_bytes(pid)
    outcomes = _burst(grpc_port, rest_port, expected)
    grown = _rss_bytes(pid) - before
    for burst in (warm_up, outcomes):
        assert len(burst) == CLIENTS * ROUNDS * 3
        assert {code for kind, code in burst if kind == "malformed"} == {"INVALID_ARGUMENT"}
        assert {code for kind, code in burst if kind == "oversized"} == {"RESOURCE_EXHAUSTED"}
        # The same model on the same bytes: the scores equal the lone request's (float32 kernels on one
        # machine; batch of one either way).
        assert max(difference for kind, difference in burst if kind == "valid") == 0.0
    assert grown < 96 * (1 << 20), f"the server process grew {grown:,} bytes over the second burst"
    assert score_faces(GrpcClient(f"127.0.0.1:{grpc_port}"), "quality", [png_bytes(face(7))]).shape == (1,)


@pytest.mark.slow
def test_server_command_serves_a_shipped_model_and_removes_its_export_at_exit():
    """--model_dir=pretrained:<name>: exported at start into a temporary folder, served as <name> (an edit
    over gRPC comes back at the size sent), the folder gone after SIGTERM; an unknown name is one line."""
    import signal
    import time

    grpc_port = _free_port()
    server = subprocess.Popen([sys.executable, os.path.join(REPO, "serving", "server.py"),
                               "--model_dir=pretrained:stargan-fer2013-64", f"--grpc_port={grpc_port}",
                               "--rest_port=-1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        deadline, lines = time.monotonic() + 240, []
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            lines.append(line)
            if line.startswith("serving gRPC") or not line:
                break
        assert lines[-1].startswith(f"serving gRPC on 127.0.0.1:{grpc_port}"), lines
        folder = lines[0].split(" into ")[1].split(" (removed")[0]
        assert os.path.isdir(os.path.join(folder, "stargan-fer2013-64", "1"))
        sent = png_bytes(face(3))
        [edited] = edit_faces(GrpcClient(f"127.0.0.1:{grpc_port}"), "stargan-fer2013-64", [sent], expression="happy")
        assert Image.open(io.BytesIO(edited)).size == Image.open(io.BytesIO(sent)).size  # back at the size sent
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert not os.path.exists(folder)
    result = subprocess.run([sys.executable, os.path.join(REPO, "serving", "server.py"), "--model_dir=pretrained:nope"],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1] == (
        "error: --model_dir=pretrained:nope: no such pretrained model; the package ships "
        + ", ".join(f"pretrained:{name}" for name in pretrained.names()))
