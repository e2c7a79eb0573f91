"""The paper's networks (§3) and any of the user's: `registry` declares them (and imports
no TensorFlow), `build` builds them; `layers`, `acoustic`, `audio` and `video` define the
paper's."""
