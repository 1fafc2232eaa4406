"""Names of the analysers a camera may enable, mapped to where each is implemented.

Kept as import paths so that validating a config never imports a model runtime.
"""

ANALYSERS: dict[str, str] = {
    "motion": "safecity.pipeline.motion_events:MotionEvents",
    "objects": "safecity.pipeline.objects:ObjectEvents",
    "faces": "safecity.pipeline.faces:FaceMatches",
    "plates": "safecity.pipeline.plates:PlateEvents",
}


def load_analyser_class(name: str) -> type:
    from importlib import import_module

    module_name, _, attribute = ANALYSERS[name].partition(":")
    return getattr(import_module(module_name), attribute)
