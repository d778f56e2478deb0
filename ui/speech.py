"""The speaker: espeak-ng (Debian) on its own thread, the latest text only.

Provides `Speaker(output)`: `say(text, language)` hands the text over and returns at
once (never blocks the Kivy loop); the speaker thread stops what is being spoken (the
state changed: it is stale) and starts espeak-ng with the voice of the language
(`VOICES`: en, de, fr, nl), the text on its stdin (never on the command line). `stop()`
silences it (pause), `close()` ends the thread and the processes. `requests` keeps the
last texts handed over (the automation socket shows them).

Outputs (`evterm ui --speech-output`, default from EVTERM_SPEECH_OUTPUT, else aplay):
- `aplay`: `espeak-ng --stdout | aplay -q`: the board's default ALSA device, works
  headless without a sound server (Debian alsa-utils);
- `espeak`: espeak-ng plays itself (its audio backend, e.g. PulseAudio/PortAudio);
- `wav:DIR`: each text rendered to DIR/NNNN-<language>.wav with `-w` (CI, tests);
- `none`: nothing is played; the requests are still counted.
A missing espeak-ng or aplay is logged once and speech stays silent (the screen works).
Every text carries its volume as espeak-ng's amplitude (`-a`, ui/speech_volume.py), so
the volume steps work through every output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from terminal.kernel.logsetup import fields, get_logger
from ui.speech_volume import DEFAULT_AMPLITUDE

log = get_logger("ui.speech")

VOICES = {"en": "en", "de": "de", "fr": "fr", "nl": "nl"}
WORDS_PER_MINUTE = 160
OUTPUTS = ("aplay", "espeak", "none")
DEFAULT_OUTPUT = "aplay"
KEPT = 20


def check_output(output: str) -> str:
    """`output` when valid, else ValueError naming what is allowed."""
    if output in OUTPUTS or (output.startswith("wav:") and len(output) > 4):
        return output
    raise ValueError(f"speech output {output!r} is not one of {', '.join(OUTPUTS)} "
                     "or wav:DIR")


def espeak_args(language: str, stdout: bool = False, wav: str | None = None,
                amplitude: int = DEFAULT_AMPLITUDE) -> list[str]:
    args = ["espeak-ng", "-v", VOICES.get(language, "en"), "-s", str(WORDS_PER_MINUTE),
            "-a", str(amplitude)]
    if wav is not None:
        args += ["-w", wav]
    elif stdout:
        args.append("--stdout")
    return args


@dataclass(frozen=True)
class Request:
    seq: int
    text: str
    language: str
    amplitude: int = DEFAULT_AMPLITUDE


class Speaker:
    def __init__(self, output: str | None = None) -> None:
        self.output = check_output(output or os.environ.get("EVTERM_SPEECH_OUTPUT")
                                   or DEFAULT_OUTPUT)
        self.requests: deque[Request] = deque(maxlen=KEPT)
        self._cond = threading.Condition()
        self._pending: Request | None = None
        self._stop = False
        self._closed = False
        self._seq = 0
        self._busy = False  # a request taken, its processes not started yet
        self._procs: list[subprocess.Popen[bytes]] = []
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="speech", daemon=True)
        self._thread.start()

    def say(self, text: str, language: str, amplitude: int = DEFAULT_AMPLITUDE) -> int:
        """Speak `text` now at espeak-ng's `amplitude`, interrupting anything said
        before; returns its number."""
        with self._cond:
            self._seq += 1
            request = Request(self._seq, text, language, amplitude)
            self.requests.append(request)
            self._pending = request
            self._cond.notify_all()
            return request.seq

    def stop(self) -> None:
        with self._cond:
            self._pending = None
            self._stop = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)
        self._kill()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                request, self._pending, self._stop = self._pending, None, False
                self._busy = True
            self._kill()
            if request is not None:
                try:
                    self._start(request)
                except OSError as exc:
                    if not self._warned:
                        self._warned = True
                        log.error("speech output failed", extra=fields(
                            output=self.output, error=str(exc)))
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _start(self, request: Request) -> None:
        if self.output == "none":
            return
        data = request.text.encode("utf-8")
        if self.output.startswith("wav:"):
            folder = Path(self.output[4:])
            folder.mkdir(parents=True, exist_ok=True)
            wav = folder / f"{request.seq:04d}-{request.language}.wav"
            self._spawn(espeak_args(request.language, wav=str(wav),
                                    amplitude=request.amplitude), data)
        elif self.output == "espeak":
            self._spawn(espeak_args(request.language, amplitude=request.amplitude), data)
        else:
            if shutil.which("aplay") is None:
                raise OSError("aplay (Debian alsa-utils) is not installed")
            speak = subprocess.Popen(espeak_args(request.language, stdout=True,
                                                 amplitude=request.amplitude),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
            play = subprocess.Popen(["aplay", "-q"], stdin=speak.stdout,
                                    stderr=subprocess.DEVNULL)
            assert speak.stdout is not None and speak.stdin is not None
            speak.stdout.close()  # aplay holds it; espeak gets SIGPIPE if aplay dies
            self._procs = [speak, play]
            self._feed(speak, data)

    def _spawn(self, args: list[str], data: bytes) -> None:
        if shutil.which(args[0]) is None:
            raise OSError("espeak-ng (Debian espeak-ng) is not installed")
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self._procs = [proc]
        self._feed(proc, data)

    @staticmethod
    def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except BrokenPipeError:
            pass

    def _kill(self) -> None:
        """Stop what is spoken now (a stale text) and reap the processes."""
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs = []

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Wait until the texts handed over are rendered (tests, the WAV output)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending is None and not self._busy,
                                       timeout_s):
                return False
        for proc in list(self._procs):
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return False
        return True
