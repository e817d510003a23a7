import os

import numpy as np
import pytest
from PIL import Image

from tf_style import images
from tf_style.errors import ImageError


def gradient_rgb(h=12, w=20):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 80)],
                    axis=-1).astype(np.uint8)


def test_rgb_roundtrip_png(tmp_path):
    a = gradient_rgb()
    Image.fromarray(a).save(tmp_path / 'a.png')
    np.testing.assert_array_equal(images.load_image(str(tmp_path / 'a.png')), a)


def test_grayscale_becomes_rgb(tmp_path):
    Image.fromarray(np.full((5, 7), 77, np.uint8), 'L').save(tmp_path / 'g.png')
    out = images.load_image(str(tmp_path / 'g.png'))
    assert out.shape == (5, 7, 3) and (out == 77).all()


def test_palette_with_transparency_goes_onto_white(tmp_path):
    p = Image.new('P', (4, 4), 0)
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putpixel((0, 0), 1)
    p.info['transparency'] = 0
    p.save(tmp_path / 'p.png', transparency=0)
    out = images.load_image(str(tmp_path / 'p.png'))
    assert tuple(out[0, 0]) == (0, 0, 255)
    assert tuple(out[1, 1]) == (255, 255, 255)


def test_rgba_alpha_is_composited_onto_white(tmp_path):
    a = np.zeros((3, 3, 4), np.uint8)
    a[..., 0] = 200
    a[0, 0, 3] = 255
    a[1, 1, 3] = 128
    Image.fromarray(a, 'RGBA').save(tmp_path / 'a.png')
    out = images.load_image(str(tmp_path / 'a.png'))
    assert tuple(out[0, 0]) == (200, 0, 0)
    assert tuple(out[2, 2]) == (255, 255, 255)
    assert out[1, 1, 1] == pytest.approx(127, abs=2)


def test_exif_orientation_is_applied(tmp_path):
    a = gradient_rgb(10, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(a).save(tmp_path / 'r.jpg', exif=exif, quality=100)
    out = images.load_image(str(tmp_path / 'r.jpg'))
    assert out.shape == (30, 10, 3)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    a = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    Image.fromarray(a).save(tmp_path / 'd.png')
    out = images.load_image(str(tmp_path / 'd.png'))
    np.testing.assert_allclose(out[..., 0], np.round(a / 257), atol=1)


def test_cmyk_jpeg(tmp_path):
    Image.new('CMYK', (6, 4), (0, 255, 255, 0)).save(tmp_path / 'c.jpg')
    out = images.load_image(str(tmp_path / 'c.jpg'))
    assert out.shape == (4, 6, 3) and out[..., 0].mean() > 200 and out[..., 1].mean() < 60


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new('RGB', (4, 4), c) for c in [(255, 0, 0), (0, 255, 0)]]
    frames[0].save(tmp_path / 'a.gif', save_all=True, append_images=frames[1:])
    out = images.load_image(str(tmp_path / 'a.gif'))
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 50


@pytest.mark.parametrize('make, message', [
    (lambda d: str(d / 'missing.jpg'), 'no such file'),
    (lambda d: str(d), 'directory'),
    (lambda d: _write(d / 'empty.jpg', b''), 'not an image'),
    (lambda d: _write(d / 'text.jpg', b'hello, not a JPEG\n' * 10), 'not an image'),
    (lambda d: _truncated_jpeg(d), 'image'),
])
def test_bad_files_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(ImageError, match=message) as e:
        images.load_image(make(tmp_path))
    assert '\n' not in str(e.value)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.fromarray(gradient_rgb(40, 40)).save(tmp_path / 'big.png')
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)
    with pytest.raises(ImageError, match='too large'):
        images.load_image(str(tmp_path / 'big.png'))


def _write(path, data):
    path.write_bytes(data)
    return str(path)


def _truncated_jpeg(d):
    Image.fromarray(gradient_rgb(64, 64)).save(d / 'full.jpg')
    data = (d / 'full.jpg').read_bytes()
    return _write(d / 'cut.jpg', data[:len(data) // 2])


def test_resize_long_side():
    a = gradient_rgb(12, 20)
    out = images.resize_long_side(a, 10)
    assert out.shape == (6, 10, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    assert images.resize_long_side(a, 20).shape == (12, 20, 3)


@pytest.mark.parametrize('ext', ['.png', '.jpg', '.jpeg', '.webp'])
def test_save_formats_and_no_temp_left(tmp_path, ext):
    path = tmp_path / ('out' + ext)
    images.save_image(str(path), gradient_rgb().astype(np.float32))
    assert Image.open(path).size == (20, 12)
    assert os.listdir(tmp_path) == [path.name]


def test_save_png_metadata_and_replace(tmp_path):
    path = tmp_path / 'out.png'
    images.save_image(str(path), np.zeros((4, 4, 3)), metadata={'tf_style.seed': 7})
    images.save_image(str(path), np.full((4, 4, 3), 255.0), metadata={'tf_style.seed': 8})
    with Image.open(path) as im:
        assert im.text['tf_style.seed'] == '8'
        assert np.asarray(im).min() == 255


def test_contact_sheet_lays_out_tiles_with_captions():
    from tf_style.tools.sheets import contact_sheet
    red = np.zeros((20, 40, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((40, 20, 3), np.uint8)
    blue[..., 2] = 255
    sheet = contact_sheet([('red', red), ('blue', blue), ('red again', red)], columns=2,
                          tile_size=40, caption_height=10, margin=2)
    assert sheet.dtype == np.uint8 and sheet.shape == (2 * 52 + 2, 2 * 42 + 2, 3)
    assert tuple(sheet[2 + 20, 2 + 20]) == (255, 0, 0)        # first tile, centred
    assert tuple(sheet[2 + 20, 44 + 20]) == (0, 0, 255)       # second tile
    assert tuple(sheet[54 + 20, 44 + 20]) == (255, 255, 255)  # no fourth tile
    assert sheet[2 + 40:2 + 50, 2:42].min() < 128             # a caption was drawn


def test_saved_files_get_ordinary_permissions(tmp_path):
    import os
    from tf_style.images import save_image
    umask = os.umask(0o022)
    try:
        path = tmp_path / 'out.png'
        save_image(str(path), np.zeros((4, 4, 3), np.uint8))
        assert path.stat().st_mode & 0o777 == 0o644
        os.chmod(path, 0o600)
        save_image(str(path), np.ones((4, 4, 3), np.uint8))
        assert path.stat().st_mode & 0o777 == 0o600   # a replaced file keeps its mode
    finally:
        os.umask(umask)


def test_load_directory_reads_the_images_in_name_order(tmp_path):
    for name, value in (('b.png', 20), ('a.jpg', 10)):
        Image.new('RGB', (6, 4), (value,) * 3).save(tmp_path / name)
    (tmp_path / 'notes.txt').write_text('not an image')
    loaded = images.load_directory(str(tmp_path))
    assert [int(x[0, 0, 0]) for x in loaded] == [10, 20]
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ImageError, match='holds no image files'):
        images.load_directory(str(empty))
    with pytest.raises(ImageError, match='not a directory'):
        images.load_directory(str(tmp_path / 'a.jpg'))


def test_write_text_is_atomic_and_replaces(tmp_path):
    path = tmp_path / 'commands.sh'
    images.write_text(str(path), 'one\n')
    images.write_text(str(path), 'two\n')
    assert path.read_text() == 'two\n' and os.listdir(tmp_path) == ['commands.sh']


def test_inset_goes_bottom_left_in_a_white_frame():
    image = np.zeros((40, 60, 3), np.float32)
    inset = np.full((10, 20, 3), 100.0, np.float32)
    from tf_style.tools.sheets import with_inset
    out = with_inset(image, inset, fraction=0.5)   # inset: 30 px long side, 15 high
    assert out.shape == image.shape and image.max() == 0  # the input is not changed
    assert (out[-15:, :30] == 100).all() and (out[-16, :31] == 255).all()
    assert (out[:24] == 0).all() and (out[:, 31:] == 0).all()
