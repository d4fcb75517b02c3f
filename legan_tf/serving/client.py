"""Clients of TF-Serving (or `legan_tf.serving.server`) for the models `legan_tf.serving.export` writes.

    from legan_tf.serving.client import GrpcClient, edit_faces
    client = GrpcClient("localhost:8500")
    [edited_png] = edit_faces(client, "legan", [open("face.jpg", "rb").read()], expression="smile", lighting="07")

`GrpcClient` speaks the PredictionService protocol (port 8500), `RestClient` the JSON API (port
8501); both return {output name: numpy array} and raise `ServingError` with the server's status
code and message, or with a plain word when no server answers.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# TF-Serving's REST metadata names dtypes as the proto enum; GrpcClient reports tf's names.
_DTYPES = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16", "DT_INT32": "int32",
           "DT_INT64": "int64", "DT_UINT8": "uint8", "DT_BOOL": "bool", "DT_STRING": "string"}


class ServingError(RuntimeError):
    """The server refused a request (code: INVALID_ARGUMENT, NOT_FOUND, ...) or could not be reached (UNAVAILABLE)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _as_array(value) -> np.ndarray:
    """bytes / str / lists of them -> an object array of bytes; numbers -> a numpy array."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    array = np.array(value, dtype=object)
    flat = array.reshape(-1)
    if not flat.size:  # an empty list: a batch of no encoded images or names
        return array
    if all(isinstance(item, (bytes, str)) for item in flat):
        return np.array([item.encode("utf-8") if isinstance(item, str) else item for item in flat],
                        dtype=object).reshape(array.shape)
    return np.asarray(value)


class GrpcClient:
    """PredictionService over gRPC: `predict(model, inputs)` -> outputs as numpy arrays."""

    def __init__(self, server: str = "localhost:8500", timeout: float = 60.0):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.server, self.timeout = server, timeout
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        self._channel = grpc.insecure_channel(server, options=options)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def _call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code = error.code().name if error.code() else "UNKNOWN"
            if code == "UNAVAILABLE":
                raise ServingError(code, f"no server answers at {self.server} ({error.details()})") from None
            raise ServingError(code, error.details() or "") from None

    def predict(self, model: str, inputs: Mapping[str, object], signature: str = "serving_default",
                version: Optional[int] = None) -> Dict[str, np.ndarray]:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = model
        request.model_spec.signature_name = signature
        if version is not None:
            request.model_spec.version.value = int(version)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(_as_array(value)))
        response = self._call(self._stub.Predict, request)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def signatures(self, model: str, version: Optional[int] = None) -> Dict[str, dict]:
        """{signature: {"inputs": {name: dtype}, "outputs": {name: dtype}}} from GetModelMetadata."""
        import tensorflow as tf
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = model
        if version is not None:
            request.model_spec.version.value = int(version)
        request.metadata_field.append("signature_def")
        response = self._call(self._stub.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return {key: {side: {name: tf.as_dtype(info.dtype).name for name, info in getattr(definition, side).items()}
                      for side in ("inputs", "outputs")}
                for key, definition in signature_map.signature_def.items()}

    def close(self):
        self._channel.close()


class RestClient:
    """TF-Serving's REST API: the same `predict` and `signatures` as GrpcClient."""

    def __init__(self, server: str = "localhost:8501", timeout: float = 60.0):
        self.base = server if server.startswith("http") else f"http://{server}"
        self.timeout = timeout
        self._signatures = {}

    def _request(self, path: str, payload: Optional[dict] = None) -> dict:
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method="POST" if data else "GET",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            body = error.read()
            try:
                message = json.loads(body).get("error", body.decode("utf-8", "replace"))
            except (json.JSONDecodeError, AttributeError):
                message = body.decode("utf-8", "replace")
            code = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED"}.get(error.code, f"HTTP {error.code}")
            raise ServingError(code, message) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            raise ServingError("UNAVAILABLE", f"no server answers at {self.base} ({getattr(error, 'reason', error)})") from None

    @staticmethod
    def _model_path(model: str, version: Optional[int]) -> str:
        return f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "")

    def signatures(self, model: str, version: Optional[int] = None) -> Dict[str, dict]:
        key = (model, version)
        if key not in self._signatures:
            found = self._request(self._model_path(model, version) + "/metadata")["metadata"]["signature_def"]
            defs = found.get("signature_def", found.get("signatureDef", {}))
            self._signatures[key] = {
                name: {side: {tensor: _DTYPES.get(info["dtype"], info["dtype"]) for tensor, info in d.get(side, {}).items()}
                       for side in ("inputs", "outputs")}
                for name, d in defs.items()}
        return self._signatures[key]

    def predict(self, model: str, inputs: Mapping[str, object], signature: str = "serving_default",
                version: Optional[int] = None) -> Dict[str, np.ndarray]:
        def encode(array):
            if array.dtype == object:
                return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode("ascii")},
                                    otypes=[object])(array).tolist() if array.size else []
            return array.tolist()

        payload = {"signature_name": signature, "inputs": {name: encode(_as_array(v)) for name, v in inputs.items()}}
        outputs = self._request(self._model_path(model, version) + ":predict", payload)["outputs"]
        dtypes = self.signatures(model, version)[signature]["outputs"]
        if not isinstance(outputs, dict) or set(outputs) - set(dtypes):  # one output: TF-Serving drops its name
            outputs = {next(iter(dtypes)): outputs}

        def decode(value, dtype):
            if dtype == "string":
                unpack = lambda v: base64.b64decode(v["b64"]) if isinstance(v, dict) else v.encode("utf-8")  # noqa: E731
                flat = np.array(value, dtype=object)
                return np.vectorize(unpack, otypes=[object])(flat) if flat.size else flat
            return np.asarray(value, dtype=dtype if dtype != "bool" else np.bool_)

        return {name: decode(value, dtypes[name]) for name, value in outputs.items()}

    def close(self):
        pass


def edit_faces(client, model: str, images: Sequence[bytes], **targets: str) -> list:
    """Encoded faces + one target name per attribute (e.g. expression="smile", lighting="07") -> edited PNG bytes.
    A target may be one name for every face or a list with one name per face."""
    inputs = {"images_bytes": list(images)}
    for attribute, value in targets.items():
        inputs[attribute] = [value] * len(images) if isinstance(value, (str, bytes)) else list(value)
    return list(client.predict(model, inputs)["images_bytes"])


def score_faces(client, model: str, images: Sequence[bytes]) -> np.ndarray:
    """Encoded faces -> Q's naturalness scores."""
    return client.predict(model, {"images_bytes": list(images)})["quality"]


def make_client(server: str, protocol: str = "grpc", timeout: float = 60.0):
    if protocol == "grpc":
        return GrpcClient(server, timeout)
    if protocol == "rest":
        return RestClient(server, timeout)
    raise ValueError(f"protocol must be grpc or rest, got {protocol!r}")
