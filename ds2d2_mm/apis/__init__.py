"""What the commands and the tooling call, on top of the registered core (not imported by
``import ds2d2_mm``): runner set-up and checks (:mod:`.runner`), the student export
(:mod:`.export_student`), SAM3 exports and retention checks (:mod:`.sam3`)."""
