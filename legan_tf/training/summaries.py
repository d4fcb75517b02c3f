"""TensorBoard summaries of a run, written by the `tensorboard` package's own protos and event-file writer.

One writer for both Keras backends (no TensorFlow needed): scalars and images in the form
`tf.summary.scalar` and `tf.summary.image` write them (a tensor with the scalars or images plugin's
metadata; an image is the string tensor [width, height, PNG]), so TensorBoard and its
EventAccumulator read a run the same whichever backend trained it.
"""

from __future__ import annotations

import io
import time

import numpy as np
from absl import logging
from PIL import Image


class NullWriter:
    """A writer that writes nothing (a worker of a cluster, or no tensorboard package)."""

    def scalars(self, step, values):
        pass

    def image(self, step, tag, picture):
        pass

    def flush(self):
        pass

    def close(self):
        pass


class EventWriter(NullWriter):
    """Scalars and uint8 HxWx3 pictures into an events.out.tfevents.* file of `directory`."""

    def __init__(self, directory: str):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.image import metadata as image_metadata
        from tensorboard.plugins.scalar import metadata as scalar_metadata
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        from tensorboard.util import tensor_util

        self._event, self._summary, self._tensor = event_pb2.Event, summary_pb2.Summary, tensor_util.make_tensor_proto
        self._scalar_metadata = scalar_metadata.create_summary_metadata(display_name=None, description=None)
        self._image_metadata = image_metadata.create_summary_metadata(display_name=None, description=None)
        self._writer = EventFileWriter(directory)
        self._closed = False

    def _write(self, step, values):
        self._writer.add_event(self._event(wall_time=time.time(), step=int(step), summary=self._summary(value=values)))

    def scalars(self, step, values):
        self._write(step, [self._summary.Value(tag=name, metadata=self._scalar_metadata,
                                               tensor=self._tensor(np.float32(value)))
                           for name, value in values.items()])
        self._writer.flush()

    def image(self, step, tag, picture):
        picture = np.asarray(picture, np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, "PNG")
        height, width = picture.shape[:2]
        encoded = np.array([str(width).encode(), str(height).encode(), buffer.getvalue()], dtype=object)
        self._write(step, [self._summary.Value(tag=tag, metadata=self._image_metadata, tensor=self._tensor(encoded))])
        self._writer.flush()

    def flush(self):
        if not self._closed:
            self._writer.flush()

    def close(self):
        if not self._closed:
            self._writer.close()
            self._closed = True


def event_writer(directory: str):
    """An EventWriter, or a NullWriter (with a warning) where the tensorboard package is not installed."""
    try:
        return EventWriter(directory)
    except ImportError:
        logging.warning("No TensorBoard event files: the tensorboard package is not installed here "
                        "(pip install tensorboard); scalars still go to logs/scalars.jsonl.")
        return NullWriter()
