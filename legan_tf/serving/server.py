"""A small in-process stand-in for TensorFlow Serving over a `legan_tf.serving.export` serving directory.

The TF-Serving binary cannot be installed everywhere (not on this project's machines), so this
server answers the same gRPC `PredictionService` (Predict, GetModelMetadata; the official
`tensorflow_serving.apis` protos) and the same REST API (`/v1/models/<name>[/versions/<n>]:predict`,
`/v1/models/<name>[/metadata]`) over the same folder, with TF-Serving's status codes: a client
written against it works unchanged against `tensorflow/serving`. It is for tests and local
development; production serving is the real binary (docs/serving.md).

As TF-Serving does, it serves the highest version of each model by default, any loaded version on
request, and picks up versions exported while it runs. Bad requests are answered with
INVALID_ARGUMENT (HTTP 400) naming the fault, unknown models with NOT_FOUND (HTTP 404), oversized
ones with RESOURCE_EXHAUSTED (HTTP 413); the server keeps answering.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import http.server
import json
import os
import re
import threading
from typing import Dict, Mapping, Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from legan_tf.serving.export import signature_inputs, versions

DEFAULT_SIGNATURE = "serving_default"
# Larger than a batch of 32 encoded faces at 1024 px; gRPC's own default (4 MiB) is too small for that.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_BATCH = 64
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "NOT_FOUND": 404, "RESOURCE_EXHAUSTED": 413, "FAILED_PRECONDITION": 400,
               "INTERNAL": 500}


class ServingFault(Exception):
    """A request the server refuses: a gRPC status code name and a message for the client."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def tf_error_text(error: tf.errors.OpError) -> str:
    """The user's part of a TensorFlow error: the failed assertion's data, or the first real line."""
    text = getattr(error, "message", str(error))
    assertion = re.search(r"assertion failed: (.*)", text)
    if assertion:
        parts = [part.strip() for part in re.findall(r"\[([^\[\]]*)\]", assertion.group(1)) if part.strip()]
        if any(part.startswith("Condition x") for part in parts):  # tf.debugging.assert_*: its message is all
            return parts[0].rstrip(". ")
        return " ".join(parts)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    skip = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[")
    useful = [line for line in lines if not line.startswith(skip)]
    return (useful or lines or [type(error).__name__])[0]


class ModelRepository:
    """The SavedModels under a serving directory, loaded on first use and kept."""

    def __init__(self, model_dir: str):
        if not os.path.isdir(model_dir):
            raise FileNotFoundError(f"no serving directory at {model_dir}")
        self.model_dir = model_dir
        self._loaded: Dict[Tuple[str, int], object] = {}
        self._lock = threading.Lock()

    def names(self):
        return sorted(entry for entry in os.listdir(self.model_dir) if versions(os.path.join(self.model_dir, entry)))

    def resolve(self, name: str, version: Optional[int] = None) -> Tuple[int, str]:
        available = versions(os.path.join(self.model_dir, name)) if name and "/" not in name and name != ".." else []
        if not available:
            raise ServingFault("NOT_FOUND", f"Servable not found for request: Latest({name}); models here: "
                                            f"{', '.join(self.names()) or 'none'}")
        if version is None:
            version = available[-1]
        elif version not in available:
            raise ServingFault("NOT_FOUND", f"Servable not found for request: Specific({name}, {version}); "
                                            f"versions: {', '.join(map(str, available))}")
        return version, os.path.join(self.model_dir, name, str(version))

    def get(self, name: str, version: Optional[int] = None):
        version, path = self.resolve(name, version)
        with self._lock:
            if (name, version) not in self._loaded:
                self._loaded[(name, version)] = tf.saved_model.load(path)
            return version, self._loaded[(name, version)]

    def signature(self, name: str, version: Optional[int], signature_name: str):
        """(version, signature name, concrete function) of a request, or the fault to answer with."""
        version, model = self.get(name, version)
        signature_name = signature_name or DEFAULT_SIGNATURE
        if signature_name not in model.signatures:
            raise ServingFault("INVALID_ARGUMENT", f"Serving signature key \"{signature_name}\" not found; "
                                                   f"{name} has {', '.join(sorted(model.signatures))}")
        return version, signature_name, model.signatures[signature_name]

    def signature_defs(self, name: str, version: Optional[int] = None):
        """(version, SignatureDefMap) as GetModelMetadata answers it, read from saved_model.pb."""
        version, path = self.resolve(name, version)
        saved = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
            saved.ParseFromString(handle.read())
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, value in saved.meta_graphs[0].signature_def.items():
            if not key.startswith("__"):
                signature_map.signature_def[key].CopyFrom(value)
        return version, signature_map


def check_inputs(signature_name: str, specs: Mapping[str, tf.TensorSpec], inputs: Mapping[str, Tuple[tf.DType, np.ndarray]]):
    """Refuses missing, unknown, mistyped and misshapen inputs before anything runs."""
    takes = ", ".join(f"{name} ({spec.dtype.name}, {spec.shape})" for name, spec in sorted(specs.items()))
    for name in inputs:
        if name not in specs:
            raise ServingFault("INVALID_ARGUMENT", f"signature '{signature_name}' has no input '{name}'; it takes {takes}")
    missing = sorted(name for name in specs if name not in inputs)
    if missing:
        raise ServingFault("INVALID_ARGUMENT", f"missing input(s) {', '.join(repr(n) for n in missing)}; "
                                               f"signature '{signature_name}' takes {takes}")
    for name, spec in sorted(specs.items()):
        dtype, value = inputs[name]
        if dtype != spec.dtype:
            raise ServingFault("INVALID_ARGUMENT", f"input '{name}' must be {spec.dtype.name}, got {dtype.name}")
        if spec.shape.rank is not None and value.ndim != spec.shape.rank:
            raise ServingFault("INVALID_ARGUMENT", f"input '{name}' must have rank {spec.shape.rank} "
                                                   f"(shape {spec.shape}), got shape {list(value.shape)}")
        for axis, (want, got) in enumerate(zip(spec.shape.as_list(), value.shape)):
            if want is not None and want != got:
                raise ServingFault("INVALID_ARGUMENT", f"input '{name}' must have shape {spec.shape}, got "
                                                       f"{list(value.shape)} (dimension {axis} must be {want})")
        if value.ndim and value.shape[0] > MAX_BATCH:
            raise ServingFault("INVALID_ARGUMENT", f"input '{name}' has a batch of {value.shape[0]}; at most {MAX_BATCH}")


def predict(function, signature_name: str, inputs: Mapping[str, Tuple[tf.DType, np.ndarray]],
            output_filter=()) -> Dict[str, np.ndarray]:
    """Runs one signature (from `ModelRepository.signature`) on checked inputs; returns numpy outputs."""
    check_inputs(signature_name, signature_inputs(function), inputs)
    try:
        outputs = function(**{key: tf.constant(value, dtype=dtype) for key, (dtype, value) in inputs.items()})
    except tf.errors.InvalidArgumentError as error:
        raise ServingFault("INVALID_ARGUMENT", tf_error_text(error)) from None
    except tf.errors.ResourceExhaustedError as error:
        raise ServingFault("RESOURCE_EXHAUSTED", tf_error_text(error)) from None
    except tf.errors.OpError as error:
        raise ServingFault("INTERNAL", tf_error_text(error)) from None
    unknown = [key for key in output_filter if key not in outputs]
    if unknown:
        raise ServingFault("INVALID_ARGUMENT", f"output_filter names unknown outputs: {', '.join(unknown)}")
    return {key: value.numpy() for key, value in outputs.items() if not output_filter or key in output_filter}


# --- gRPC ---------------------------------------------------------------------------------------------

class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, repository: ModelRepository):
        self.repository = repository

    def _abort(self, context, fault: ServingFault):
        context.abort(getattr(grpc.StatusCode, fault.code), fault.message)

    def Predict(self, request, context):  # noqa: N802 (the proto's name)
        try:
            inputs = {}
            for key, proto in request.inputs.items():
                try:
                    inputs[key] = (tf.as_dtype(proto.dtype), tf.make_ndarray(proto))
                except (TypeError, ValueError) as error:
                    raise ServingFault("INVALID_ARGUMENT", f"input '{key}' is not a readable tensor ({error})") from None
            version = request.model_spec.version.value if request.model_spec.HasField("version") else None
            version, signature, function = self.repository.signature(request.model_spec.name, version,
                                                                     request.model_spec.signature_name)
            outputs = predict(function, signature, inputs, list(request.output_filter))
        except ServingFault as fault:
            self._abort(context, fault)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = signature
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise ServingFault("INVALID_ARGUMENT", "metadata_field must be ['signature_def']")
            version = request.model_spec.version.value if request.model_spec.HasField("version") else None
            version, signature_map = self.repository.signature_defs(request.model_spec.name, version)
        except ServingFault as fault:
            self._abort(context, fault)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(signature_map)
        return response


# --- REST (TF-Serving's JSON API, columnar "inputs" and row "instances") ---------------------------------

def _decode_json_value(value):
    """{"b64": ...} -> bytes, strings -> bytes, lists recursively."""
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise ServingFault("INVALID_ARGUMENT", f"a JSON object as a value must be {{\"b64\": ...}}, got keys {sorted(value)}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError):
            raise ServingFault("INVALID_ARGUMENT", "a \"b64\" value is not valid base64") from None
    if isinstance(value, list):
        return [_decode_json_value(item) for item in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def json_to_array(name: str, value, spec: tf.TensorSpec):
    value = _decode_json_value(value)
    try:
        if spec.dtype == tf.string:
            array = np.array(value, dtype=object)
            flat = array.reshape(-1)
            if not all(isinstance(item, bytes) for item in flat):
                raise ValueError("strings expected")
            return tf.string, array
        array = np.array(value)
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise ValueError("numbers expected")
        return spec.dtype, array.astype(spec.dtype.as_numpy_dtype)
    except ValueError as error:
        raise ServingFault("INVALID_ARGUMENT", f"input '{name}' is not a {spec.dtype.name} tensor "
                                               f"({'ragged lists' if 'inhomogeneous' in str(error) else error})") from None


def array_to_json(name: str, array: np.ndarray):
    if array.dtype == object:
        # As TF-Serving: string outputs named *_bytes are base64, other strings are text.
        encode = ((lambda b: {"b64": base64.b64encode(b).decode("ascii")}) if name.endswith("_bytes")
                  else (lambda b: b.decode("utf-8", errors="replace")))
        return np.vectorize(encode, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def rest_predict(repository: ModelRepository, name: str, version: Optional[int], body: bytes) -> dict:
    repository.resolve(name, version)  # an unknown model is NOT_FOUND before the body is looked at
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ServingFault("INVALID_ARGUMENT", f"the request body is not JSON ({error})") from None
    if not isinstance(request, dict) or ("inputs" in request) == ("instances" in request):
        raise ServingFault("INVALID_ARGUMENT", "the request must be a JSON object with exactly one of \"inputs\" or \"instances\"")
    version, signature_name, function = repository.signature(name, version, request.get("signature_name"))
    specs = signature_inputs(function)
    if "inputs" in request:
        columns = request["inputs"]
        if not isinstance(columns, dict):  # one unnamed input
            columns = {next(iter(specs)): columns} if len(specs) == 1 else columns
        if not isinstance(columns, dict):
            raise ServingFault("INVALID_ARGUMENT", f"\"inputs\" must name the inputs: {', '.join(sorted(specs))}")
    else:
        rows = request["instances"]
        if not isinstance(rows, list):
            raise ServingFault("INVALID_ARGUMENT", "\"instances\" must be a list")
        if rows and all(isinstance(row, dict) and set(row) != {"b64"} for row in rows):
            keys = set().union(*rows)
            columns = {key: [row.get(key) for row in rows] for key in keys}
        else:
            columns = {next(iter(specs)): rows} if len(specs) == 1 else {}
            if not columns:
                raise ServingFault("INVALID_ARGUMENT", f"each instance must be an object with {', '.join(sorted(specs))}")
    inputs = {}
    for key, value in columns.items():
        if key not in specs:
            raise ServingFault("INVALID_ARGUMENT", f"signature '{signature_name}' has no input '{key}'")
        inputs[key] = json_to_array(key, value, specs[key])
    outputs = predict(function, signature_name, inputs)
    encoded = {key: array_to_json(key, value) for key, value in outputs.items()}
    if "instances" in request:
        count = len(next(iter(outputs.values())))
        predictions = [{key: encoded[key][i] for key in encoded} for i in range(count)]
        return {"predictions": [next(iter(p.values())) for p in predictions] if len(encoded) == 1 else predictions}
    return {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}


ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<rest>:predict|/metadata)?$")


def make_rest_handler(repository: ModelRepository, max_body_bytes: int = MAX_MESSAGE_BYTES):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # one line per request on stderr is noise in tests and logs
            pass

        def _send(self, status: int, payload: dict):
            body = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _route(self, method: str):
            match = ROUTE.match(self.path.split("?")[0])
            if not match:
                raise ServingFault("NOT_FOUND", f"no such endpoint: {method} {self.path}")
            version = int(match["version"]) if match["version"] else None
            return match["name"], version, match["rest"]

        def _handle(self, method: str):
            try:
                name, version, rest = self._route(method)
                if method == "POST":
                    if rest != ":predict":
                        raise ServingFault("NOT_FOUND", f"POST {self.path}: only :predict is served")
                    length = int(self.headers.get("Content-Length") or 0)
                    if length > max_body_bytes:
                        # Read and drop the body (in chunks: memory stays one chunk) so the client, still
                        # sending, gets the 413 instead of a reset; past 16 limits the connection is just closed.
                        remaining = min(length, 16 * max_body_bytes)
                        while remaining > 0:
                            chunk = self.rfile.read(min(remaining, 1 << 16))
                            if not chunk:
                                break
                            remaining -= len(chunk)
                        self.close_connection = True
                        raise ServingFault("RESOURCE_EXHAUSTED", f"the request has {length} bytes; at most {max_body_bytes}")
                    self._send(200, rest_predict(repository, name, version, self.rfile.read(length)))
                elif rest == "/metadata":
                    version, signature_map = repository.signature_defs(name, version)
                    self._send(200, {"model_spec": {"name": name, "version": str(version)},
                                     "metadata": {"signature_def": json_format.MessageToDict(
                                         signature_map, preserving_proto_field_name=True)}})
                elif rest is None:
                    version, _ = repository.resolve(name, version)
                    self._send(200, {"model_version_status": [{"version": str(version), "state": "AVAILABLE",
                                                               "status": {"error_code": "OK", "error_message": ""}}]})
                else:
                    raise ServingFault("NOT_FOUND", f"GET {self.path}: use POST for :predict")
            except ServingFault as fault:
                self._send(HTTP_STATUS.get(fault.code, 500), {"error": fault.message})

        def do_GET(self):  # noqa: N802
            self._handle("GET")

        def do_POST(self):  # noqa: N802
            self._handle("POST")

    return Handler


class Server:
    """gRPC and REST over one ModelRepository. Port 0 picks a free port; `start()` returns the ports."""

    def __init__(self, model_dir: str, grpc_port: int = 8500, rest_port: int = 8501, host: str = "127.0.0.1",
                 workers: int = 4, max_request_bytes: int = MAX_MESSAGE_BYTES):
        self.repository = ModelRepository(model_dir)
        self.host, self.grpc_port, self.rest_port, self.workers = host, grpc_port, rest_port, workers
        self.max_request_bytes = max_request_bytes
        self._grpc = self._http = None

    def start(self) -> Tuple[Optional[int], Optional[int]]:
        options = [("grpc.max_receive_message_length", self.max_request_bytes),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        if self.grpc_port is not None:
            self._grpc = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=self.workers), options=options)
            prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
                PredictionServicer(self.repository), self._grpc)
            self.grpc_port = self._grpc.add_insecure_port(f"{self.host}:{self.grpc_port}")
            if not self.grpc_port:
                raise OSError(f"cannot listen for gRPC on {self.host}")
            self._grpc.start()
        if self.rest_port is not None:
            self._http = http.server.ThreadingHTTPServer((self.host, self.rest_port), make_rest_handler(self.repository, self.max_request_bytes))
            self._http.daemon_threads = True
            self.rest_port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self.grpc_port, self.rest_port

    def wait(self):
        if self._grpc is not None:
            self._grpc.wait_for_termination()
        elif self._http is not None:
            threading.Event().wait()

    def stop(self):
        if self._grpc is not None:
            self._grpc.stop(grace=1.0).wait()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
