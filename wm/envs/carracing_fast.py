"""A faster, pixel-identical drop-in for gymnasium's CarRacing-v3.

Almost all of a CarRacing step is spent rendering: the stock env rotates and
scales ~1000 road/grass quads one ``pygame.math.Vector2`` at a time, draws the
ones within a generous margin of the 1000x800 canvas (most of which are still
off screen), then downsamples the canvas to 96x96.  ``FastCarRacing`` keeps the
exact same pixel pipeline but:

* transforms every quad at once with numpy, using the very same floating point
  operations (and the same cos/sin values) as pygame's ``Vector2.rotate_rad``,
  so the vertex coordinates handed to ``gfxdraw`` are identical;
* skips quads whose transformed bounding box lies entirely outside the canvas
  (plus a few pixels of slack for anti-aliasing), before any per-quad Python
  work -- gfxdraw would have clipped all of their pixels away anyway;
* replaces the huge background quad (up to ~10k scanlines) by a plain fill
  when it provably covers the whole canvas;
* reuses the canvas surface and the HUD font instead of re-creating them
  every frame (creating a fresh ``Font`` also throws away its glyph cache);
* for the observation (``state_pixels``), never flips the 1000x800 canvas.
  ``smoothscale`` shrinks the width row by row, then the height, so it is the
  same to shrink the width of the canvas rows the HUD leaves visible, flip
  those 96-pixel rows, put the HUD's own shrunk rows below them and shrink the
  height last.  The HUD's black strip covers the bottom 100 rows of the flipped
  canvas unless a bar grows out of it (a speed over 200 or a wheel spinning
  over 400 rad/s); then the stock flip is used.  (Clipping the road drawing to
  the visible rows would not be exact: SDL_gfx's anti-aliased edges change
  where a clip cuts them.)

Observations are bit-identical to the stock env; ``tests/test_carracing_fast.py``
checks that.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import pygame
from gymnasium.envs.box2d import car_racing as _cr
from gymnasium.envs.box2d.car_racing import CarRacing
from pygame import gfxdraw

FAST_ENV_ID = "wm/FastCarRacing-v3"
STOCK_ENV_ID = "CarRacing-v3"

_W = _cr.WINDOW_W
_H = _cr.WINDOW_H
# Stock culling: a quad is drawn if any vertex lies within this many pixels of
# the canvas.  We must apply the same test so we never draw *more* than stock.
_STOCK_PAD = _cr.MAX_SHAPE_DIM
# Our extra culling: a quad is skipped only if its bounding box misses the
# canvas by more than this.  gfxdraw truncates coordinates towards zero, so a
# vertex at x=-0.9 still lands on column 0; a sweep over random camera poses
# showed 0.5 px is too little and 1 px suffices, so 3 px leaves headroom.
_CULL_PAD = 3.0
# The background is replaced by a fill only if its edges are at least this far
# (in pixels) outside the canvas, so neither its fill rule nor its AA outline
# can differ from a flat fill anywhere on screen.
_BG_PAD = 8.0
# The HUD: stock paints rows [_HUD_TOP, _H) of the flipped canvas black, then
# draws its bars and the score there.  Those are rows [0, _H - _HUD_TOP) of the
# canvas before the flip; the observation sees the road only below them.
_HUD_TOP = _H - 5 * (_H / 40.0)
assert _HUD_TOP == int(_HUD_TOP)
_HUD_TOP = int(_HUD_TOP)
_ROAD_RECT = pygame.Rect(0, _H - _HUD_TOP, _W, _HUD_TOP)  # unflipped rows the observation sees road in
_HUD_RECT = pygame.Rect(0, _HUD_TOP, _W, _H - _HUD_TOP)  # the HUD's rows, flipped


def _grass_quads() -> np.ndarray:
    """World-space grass patches, in the same order and arithmetic as stock."""
    g = _cr.GRASS_DIM
    quads = []
    for x in range(-20, 20, 2):
        for y in range(-20, 20, 2):
            quads.append(
                [
                    (g * x + g, g * y + 0),
                    (g * x + 0, g * y + 0),
                    (g * x + 0, g * y + g),
                    (g * x + g, g * y + g),
                ]
            )
    return np.asarray(quads, dtype=np.float64)


_GRASS = _grass_quads()
_N_GRASS = len(_GRASS)


def _rotation(angle: float) -> tuple[float, float]:
    """(cos, sin) exactly as pygame's rotate_rad uses them.

    Rotating the unit x vector returns (c*1 - s*0, s*1 + c*0) == (c, s), and
    for pygame's special-cased right angles it returns the exact 0/±1 values
    whose products reproduce the special-cased coordinate swaps.
    """
    c, s = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)
    return c, s


class FastCarRacing(CarRacing):
    """CarRacing with culled, vectorised road rendering; observations unchanged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._road_src: list | None = None  # road_poly list the cache was built from
        self._road_len = -1
        self._quads: np.ndarray = _GRASS  # these three are rebuilt by _world_quads before first use
        self._centres: np.ndarray = np.empty((0, 2))
        self._radii: np.ndarray = np.empty(0)
        self._road_colors: list = []
        self._canvas: pygame.Surface | None = None
        self._hud: pygame.Surface | None = None  # the flipped canvas's HUD strip, drawn apart
        self._rows: pygame.Surface | None = None  # the observation's rows before the last shrink
        self._hud_font: pygame.font.Font | None = None

    # -- caches -------------------------------------------------------------

    def _world_quads(self) -> np.ndarray:
        """Grass + road quads in world space, rebuilt only when the track changes."""
        road = self.road_poly
        if road is not self._road_src or len(road) != self._road_len:
            # Point coordinates are plain floats, so float64 holds them exactly.
            road_xy = np.asarray(
                [[(p[0], p[1]) for p in poly] for poly, _ in road], dtype=np.float64
            ).reshape(-1, 4, 2)
            self._quads = np.concatenate([_GRASS, road_xy])
            # Each quad's world-space centre and the radius of a disc holding it.
            self._centres = self._quads.mean(axis=1)
            self._radii = np.linalg.norm(self._quads - self._centres[:, None], axis=2).max(axis=1)
            # Keep the colour *objects*: tile colours are numpy arrays that the
            # contact listener mutates in place, so they must be read per frame.
            self._road_colors = [color for _, color in road]
            self._road_src = road
            self._road_len = len(road)
        return self._quads

    # -- rendering ----------------------------------------------------------

    def _render(self, mode: str) -> Any:
        """Stock _render, with a reused canvas and HUD font, and the HUD drawn apart for observations."""
        assert mode in self.metadata["render_modes"]

        if not pygame.font.get_init():
            # Fonts die with the font module (e.g. after pygame.quit()).
            self._hud_font = None
            pygame.font.init()
        if self.screen is None and mode == "human":
            pygame.display.init()
            self.screen = pygame.display.set_mode((_W, _H))
        if self.clock is None:
            self.clock = pygame.time.Clock()

        if "t" not in self.__dict__:
            return None  # reset() not called yet

        # Same camera as stock; _render_road repaints every pixel of the
        # canvas, so reusing it is equivalent to a fresh black surface.
        if self._canvas is None:
            self._canvas = pygame.Surface((_W, _H))
        canvas = self._canvas
        self.surf = canvas

        assert self.car is not None
        angle = -self.car.hull.angle
        zoom = 0.1 * _cr.SCALE * max(1 - self.t, 0) + _cr.ZOOM * _cr.SCALE * min(
            self.t, 1
        )
        scroll_x = -(self.car.hull.position[0]) * zoom
        scroll_y = -(self.car.hull.position[1]) * zoom
        trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
        trans = (_W / 2 + trans[0], _H / 4 + trans[1])

        hud_apart = mode == "state_pixels" and self._hud_stays_in_strip()
        self._render_road(zoom, trans, angle)
        self.car.draw(
            self.surf,
            zoom,
            trans,
            angle,
            mode not in ["state_pixels_list", "state_pixels"],
        )
        if hud_apart:
            return self._observation_hud_apart(canvas)

        self.surf = pygame.transform.flip(self.surf, False, True)
        self._render_indicators(_W, _H)
        self._render_score()

        if mode == "human":
            pygame.event.pump()
            self.clock.tick(self.metadata["render_fps"])
            assert self.screen is not None
            self.screen.fill(0)
            self.screen.blit(self.surf, (0, 0))
            pygame.display.flip()
            return None
        if mode == "rgb_array":
            return self._create_image_array(self.surf, (_cr.VIDEO_W, _cr.VIDEO_H))
        if mode == "state_pixels":
            return self._create_image_array(self.surf, (_cr.STATE_W, _cr.STATE_H))
        return self.isopen

    def _render_score(self) -> None:
        """The episode's score at the bottom left, as stock draws it."""
        if self._hud_font is None:
            self._hud_font = pygame.font.Font(pygame.font.get_default_font(), 42)
        text = self._hud_font.render(
            f"{self.reward:04.0f}", True, (255, 255, 255), (0, 0, 0)
        )
        text_rect = text.get_rect()
        text_rect.center = (60, _H - _H * 2.5 / 40.0)
        self.surf.blit(text, text_rect)

    def _hud_stays_in_strip(self) -> bool:
        """True if every HUD bar ends inside the black strip (stock's own arithmetic)."""
        assert self.car is not None
        h = _H / 40.0
        vx, vy = self.car.hull.linearVelocity
        values = [0.02 * float(np.sqrt(np.square(vx) + np.square(vy)))]
        values += [0.01 * w.omega for w in self.car.wheels]
        return all(_H - (h + h * v) >= _HUD_TOP for v in values)

    def _observation_hud_apart(self, canvas: pygame.Surface) -> np.ndarray:
        """The stock observation, from the unflipped canvas and a separately drawn HUD."""
        if self._hud is None:
            self._hud = pygame.Surface((_W, _H))
            self._rows = pygame.Surface((_cr.STATE_W, _H))
        road = pygame.transform.smoothscale(
            canvas.subsurface(_ROAD_RECT), (_cr.STATE_W, _HUD_TOP)
        )
        self.surf = self._hud
        self._render_indicators(_W, _H)
        self._render_score()
        hud = pygame.transform.smoothscale(
            self._hud.subsurface(_HUD_RECT), (_cr.STATE_W, _H - _HUD_TOP)
        )
        self.surf = canvas
        rows = self._rows  # both blits below cover it whole, so nothing of the last frame shows
        assert rows is not None
        rows.blit(pygame.transform.flip(road, False, True), (0, 0))
        rows.blit(hud, (0, _HUD_TOP))
        return self._create_image_array(rows, (_cr.STATE_W, _cr.STATE_H))

    def _render_road(
        self, zoom: float, translation: Sequence[float], angle: float
    ) -> None:
        """Draw background, grass and road, skipping quads that miss the canvas."""
        surf = self.surf
        c, s = _rotation(angle)
        tx, ty = translation[0], translation[1]

        self._render_background(surf, c, s, zoom, tx, ty)

        visible, pts = self._visible_quads(c, s, zoom, tx, ty)
        grass_color = self.grass_color
        road_colors = self._road_colors
        # Indices are ascending, so draw order (grass, then road) matches stock.
        for i, poly in zip(visible.tolist(), pts):
            if i < _N_GRASS:
                color = grass_color
            else:
                color = [int(v) for v in road_colors[i - _N_GRASS]]
            gfxdraw.aapolygon(surf, poly, color)
            gfxdraw.filled_polygon(surf, poly, color)

    def _visible_quads(
        self, c: float, s: float, zoom: float, tx: float, ty: float
    ) -> tuple[np.ndarray, list]:
        """Indices (ascending) of the quads to draw, and their screen vertices."""
        quads = self._world_quads()
        # A cheap first pass in world space, before the exact tests below: keep
        # the quads whose bounding box (inside a disc of sqrt(2) x the quad's
        # radius, whatever the rotation) can reach the disc around the padded
        # canvas.  It passes every quad the exact tests would keep.
        dx, dy = _W / 2 - tx, _H / 2 - ty
        centre = np.array([c * dx + s * dy, c * dy - s * dx]) / zoom
        reach = np.hypot(_W / 2 + _CULL_PAD, _H / 2 + _CULL_PAD) / zoom + np.sqrt(2.0) * self._radii + 1.0
        candidates = np.flatnonzero(np.square(self._centres - centre).sum(axis=1) <= np.square(reach))
        x = quads[candidates, :, 0]
        y = quads[candidates, :, 1]
        # Same operation order as stock (rotate, then scale, then translate)
        # so every coordinate rounds identically.
        px = (c * x - s * y) * zoom + tx
        py = (s * x + c * y) * zoom + ty

        # Stock rule: some vertex within _STOCK_PAD of the canvas.
        near = (
            (px >= -_STOCK_PAD)
            & (px <= _W + _STOCK_PAD)
            & (py >= -_STOCK_PAD)
            & (py <= _H + _STOCK_PAD)
        ).any(axis=1)
        # Our rule: bounding box touches the canvas (with AA slack).
        overlaps = (
            (px.max(axis=1) >= -_CULL_PAD)
            & (px.min(axis=1) <= _W + _CULL_PAD)
            & (py.max(axis=1) >= -_CULL_PAD)
            & (py.min(axis=1) <= _H + _CULL_PAD)
        )
        keep = near & overlaps
        return candidates[keep], np.stack([px[keep], py[keep]], axis=-1).tolist()

    def _render_background(
        self,
        surf: pygame.Surface,
        c: float,
        s: float,
        zoom: float,
        tx: float,
        ty: float,
    ) -> None:
        """Paint the playfield quad, as a flat fill when it covers the canvas."""
        bound = _cr.PLAYFIELD
        # Map the (padded) canvas corners back to world space; the map is a
        # rotation + uniform scale, so a pixel margin is margin/zoom in world.
        cx = np.array([-_BG_PAD, _W + _BG_PAD, _W + _BG_PAD, -_BG_PAD]) - tx
        cy = np.array([-_BG_PAD, -_BG_PAD, _H + _BG_PAD, _H + _BG_PAD]) - ty
        wx = (c * cx + s * cy) / zoom
        wy = (c * cy - s * cx) / zoom
        inner = bound - _BG_PAD / zoom
        if np.all(np.abs(wx) <= inner) and np.all(np.abs(wy) <= inner):
            # Let gfxdraw convert the colour (it accepts float arrays under
            # domain randomisation), then flood the canvas with that pixel.
            gfxdraw.pixel(surf, 0, 0, self.bg_color)
            surf.fill(surf.get_at_mapped((0, 0)))
            return

        # Edge of the playfield is visible: draw it exactly like stock, on a
        # black canvas (what a freshly created surface would hold).
        surf.fill((0, 0, 0))
        field = np.array(
            [(bound, bound), (bound, -bound), (-bound, -bound), (-bound, bound)]
        )
        fx = (c * field[:, 0] - s * field[:, 1]) * zoom + tx
        fy = (s * field[:, 0] + c * field[:, 1]) * zoom + ty
        poly = np.stack([fx, fy], axis=-1).tolist()
        gfxdraw.aapolygon(surf, poly, self.bg_color)
        gfxdraw.filled_polygon(surf, poly, self.bg_color)


def register_fast_env() -> str:
    """Register FastCarRacing as "wm/FastCarRacing-v3" (idempotent); return the id."""
    if FAST_ENV_ID not in gym.registry:
        stock = gym.spec(STOCK_ENV_ID)
        gym.register(
            id=FAST_ENV_ID,
            entry_point="wm.envs.carracing_fast:FastCarRacing",
            max_episode_steps=stock.max_episode_steps,
            reward_threshold=stock.reward_threshold,
            nondeterministic=stock.nondeterministic,
            kwargs=dict(stock.kwargs),
        )
    return FAST_ENV_ID


def make_carracing(fast: bool = True, **kwargs: Any) -> gym.Env:
    """gym.make the fast (default) or stock CarRacing-v3 with the given kwargs."""
    if fast:
        return gym.make(register_fast_env(), **kwargs)
    return gym.make(STOCK_ENV_ID, **kwargs)
