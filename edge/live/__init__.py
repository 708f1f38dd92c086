"""The live half: frame sources, the capture thread, partial answers, the overlay, recording.

It imports the core (`edge.model`, parsers, drawing); the core never imports it.
"""

from edge.live.frames import Frame, Source
from edge.live.loop import Live, LiveEvent
from edge.live.sources import open_source

__all__ = ["Frame", "Live", "LiveEvent", "Source", "open_source"]
