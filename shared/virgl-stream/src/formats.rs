//! Block layouts of the virgl resource formats: how many bytes one block of
//! a format takes, and how many texels wide and high that block is.
//!
//! The table covers every value of `enum virgl_formats` below
//! `VIRGL_FORMAT_MAX` in virglrenderer 0.10.4 (`src/virgl_hw.h`). Sizes come
//! from the format names (the sum of the channel widths, `X` padding
//! included) and were checked entry by entry against the host's own format
//! description table (`src/gallium/auxiliary/util/u_format.csv` in the same
//! release), which is what the host's transfer bounds checks use
//! (`util_format_get_blocksize`, host-validation §2.2). They agree on every
//! format both know.
//!
//! The cases that are not "one texel, sum of channels":
//! - compressed formats are 4×4 blocks: 8 bytes for DXT1, RGTC1, LATC1,
//!   ETC1 and the ETC2 formats without a separate alpha or second channel
//!   (RGB8, SRGB8, RGB8A1, SRGB8A1, R11); 16 bytes for DXT3, DXT5, RGTC2,
//!   LATC2, BPTC and ETC2 RGBA8, SRGBA8 and RG11;
//! - ASTC blocks are 16 bytes and as wide and high as the name says;
//! - the packed-YUV and subsampled RGB formats (UYVY, YUYV, R8G8_B8G8,
//!   G8R8_G8B8, R8G8_R8B8, G8R8_B8R8) are 4 bytes per 2×1 block;
//! - R1_UNORM is one byte per 8×1 block;
//! - planar YUV (YV12, YV16, IYUV, NV12, NV21, P010, P012, P016) has no
//!   single block size, and a transfer cannot address it linearly, so it is
//!   unknown here, as are NONE and the values no format has.
//!
//! Two quirks of the 0.10.4 header, both resolved as the host resolves them:
//! - values 262 to 266 carry two names each (A16L16_UNORM and
//!   A1B5G5R5_UNORM are both 262, and so on). The host's description table
//!   only knows the first set (A16L16_UNORM, G8R8_UNORM, G8R8_SNORM,
//!   G16R16_UNORM, G16R16_SNORM), so those sizes are the ones given here;
//! - 317 to 321 (B8G8R8_UNORM, R3G3B2_UNORM, R4G4B4A4_UNORM, R5G5B5A1_UNORM,
//!   R5G6B5_UNORM) are in the enum but not in the host's description table
//!   nor in its GL format table, so the host can create no texture of them.
//!   Their sizes here are the ones their names give; whether a format is
//!   usable at all is the capset masks' business, not this table's.

/// The block layout of a format: the unit transfers and strides count in
/// (`util_format_get_blocksize`, `_blockwidth`, `_blockheight` on the host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    /// Bytes one block occupies.
    pub bytes: u32,
    /// Texels across one block.
    pub width: u32,
    /// Texels down one block.
    pub height: u32,
}

/// `VIRGL_FORMAT_MAX` of virglrenderer 0.10.4: one past the last format. The
/// host refuses a resource whose format is not below it
/// (`check_resource_valid`, host-validation §1.2).
pub const FORMAT_MAX: u32 = 322;

/// The block layout of virgl format `format`, or `None` for NONE, values no
/// format has, planar YUV, and anything from [`FORMAT_MAX`] on.
pub fn block(format: u32) -> Option<Block> {
    BLOCKS.get(usize::try_from(format).ok()?).copied().flatten()
}

/// A plain format: one texel per block.
const fn px(bytes: u32) -> Option<Block> {
    blk(bytes, 1, 1)
}

/// A format whose blocks are `width` × `height` texels.
const fn blk(bytes: u32, width: u32, height: u32) -> Option<Block> {
    Some(Block {
        bytes,
        width,
        height,
    })
}

/// Indexed by format value; the comment on each line is its name in
/// `enum virgl_formats` without `VIRGL_FORMAT_`.
static BLOCKS: [Option<Block>; FORMAT_MAX as usize] = [
    None,            //   0 NONE
    px(4),           //   1 B8G8R8A8_UNORM
    px(4),           //   2 B8G8R8X8_UNORM
    px(4),           //   3 A8R8G8B8_UNORM
    px(4),           //   4 X8R8G8B8_UNORM
    px(2),           //   5 B5G5R5A1_UNORM
    px(2),           //   6 B4G4R4A4_UNORM
    px(2),           //   7 B5G6R5_UNORM
    px(4),           //   8 R10G10B10A2_UNORM
    px(1),           //   9 L8_UNORM
    px(1),           //  10 A8_UNORM
    px(1),           //  11 I8_UNORM
    px(2),           //  12 L8A8_UNORM
    px(2),           //  13 L16_UNORM
    blk(4, 2, 1),    //  14 UYVY
    blk(4, 2, 1),    //  15 YUYV
    px(2),           //  16 Z16_UNORM
    px(4),           //  17 Z32_UNORM
    px(4),           //  18 Z32_FLOAT
    px(4),           //  19 Z24_UNORM_S8_UINT
    px(4),           //  20 S8_UINT_Z24_UNORM
    px(4),           //  21 Z24X8_UNORM
    px(4),           //  22 X8Z24_UNORM
    px(1),           //  23 S8_UINT
    px(8),           //  24 R64_FLOAT
    px(16),          //  25 R64G64_FLOAT
    px(24),          //  26 R64G64B64_FLOAT
    px(32),          //  27 R64G64B64A64_FLOAT
    px(4),           //  28 R32_FLOAT
    px(8),           //  29 R32G32_FLOAT
    px(12),          //  30 R32G32B32_FLOAT
    px(16),          //  31 R32G32B32A32_FLOAT
    px(4),           //  32 R32_UNORM
    px(8),           //  33 R32G32_UNORM
    px(12),          //  34 R32G32B32_UNORM
    px(16),          //  35 R32G32B32A32_UNORM
    px(4),           //  36 R32_USCALED
    px(8),           //  37 R32G32_USCALED
    px(12),          //  38 R32G32B32_USCALED
    px(16),          //  39 R32G32B32A32_USCALED
    px(4),           //  40 R32_SNORM
    px(8),           //  41 R32G32_SNORM
    px(12),          //  42 R32G32B32_SNORM
    px(16),          //  43 R32G32B32A32_SNORM
    px(4),           //  44 R32_SSCALED
    px(8),           //  45 R32G32_SSCALED
    px(12),          //  46 R32G32B32_SSCALED
    px(16),          //  47 R32G32B32A32_SSCALED
    px(2),           //  48 R16_UNORM
    px(4),           //  49 R16G16_UNORM
    px(6),           //  50 R16G16B16_UNORM
    px(8),           //  51 R16G16B16A16_UNORM
    px(2),           //  52 R16_USCALED
    px(4),           //  53 R16G16_USCALED
    px(6),           //  54 R16G16B16_USCALED
    px(8),           //  55 R16G16B16A16_USCALED
    px(2),           //  56 R16_SNORM
    px(4),           //  57 R16G16_SNORM
    px(6),           //  58 R16G16B16_SNORM
    px(8),           //  59 R16G16B16A16_SNORM
    px(2),           //  60 R16_SSCALED
    px(4),           //  61 R16G16_SSCALED
    px(6),           //  62 R16G16B16_SSCALED
    px(8),           //  63 R16G16B16A16_SSCALED
    px(1),           //  64 R8_UNORM
    px(2),           //  65 R8G8_UNORM
    px(3),           //  66 R8G8B8_UNORM
    px(4),           //  67 R8G8B8A8_UNORM
    px(4),           //  68 X8B8G8R8_UNORM
    px(1),           //  69 R8_USCALED
    px(2),           //  70 R8G8_USCALED
    px(3),           //  71 R8G8B8_USCALED
    px(4),           //  72 R8G8B8A8_USCALED
    None,            //  73 (no format has this value)
    px(1),           //  74 R8_SNORM
    px(2),           //  75 R8G8_SNORM
    px(3),           //  76 R8G8B8_SNORM
    px(4),           //  77 R8G8B8A8_SNORM
    None,            //  78 (no format has this value)
    None,            //  79 (no format has this value)
    None,            //  80 (no format has this value)
    None,            //  81 (no format has this value)
    px(1),           //  82 R8_SSCALED
    px(2),           //  83 R8G8_SSCALED
    px(3),           //  84 R8G8B8_SSCALED
    px(4),           //  85 R8G8B8A8_SSCALED
    None,            //  86 (no format has this value)
    px(4),           //  87 R32_FIXED
    px(8),           //  88 R32G32_FIXED
    px(12),          //  89 R32G32B32_FIXED
    px(16),          //  90 R32G32B32A32_FIXED
    px(2),           //  91 R16_FLOAT
    px(4),           //  92 R16G16_FLOAT
    px(6),           //  93 R16G16B16_FLOAT
    px(8),           //  94 R16G16B16A16_FLOAT
    px(1),           //  95 L8_SRGB
    px(2),           //  96 L8A8_SRGB
    px(3),           //  97 R8G8B8_SRGB
    px(4),           //  98 A8B8G8R8_SRGB
    px(4),           //  99 X8B8G8R8_SRGB
    px(4),           // 100 B8G8R8A8_SRGB
    px(4),           // 101 B8G8R8X8_SRGB
    px(4),           // 102 A8R8G8B8_SRGB
    px(4),           // 103 X8R8G8B8_SRGB
    px(4),           // 104 R8G8B8A8_SRGB
    blk(8, 4, 4),    // 105 DXT1_RGB
    blk(8, 4, 4),    // 106 DXT1_RGBA
    blk(16, 4, 4),   // 107 DXT3_RGBA
    blk(16, 4, 4),   // 108 DXT5_RGBA
    blk(8, 4, 4),    // 109 DXT1_SRGB
    blk(8, 4, 4),    // 110 DXT1_SRGBA
    blk(16, 4, 4),   // 111 DXT3_SRGBA
    blk(16, 4, 4),   // 112 DXT5_SRGBA
    blk(8, 4, 4),    // 113 RGTC1_UNORM
    blk(8, 4, 4),    // 114 RGTC1_SNORM
    blk(16, 4, 4),   // 115 RGTC2_UNORM
    blk(16, 4, 4),   // 116 RGTC2_SNORM
    blk(4, 2, 1),    // 117 R8G8_B8G8_UNORM
    blk(4, 2, 1),    // 118 G8R8_G8B8_UNORM
    px(4),           // 119 R8SG8SB8UX8U_NORM
    px(2),           // 120 R5SG5SB6U_NORM
    px(4),           // 121 A8B8G8R8_UNORM
    px(2),           // 122 B5G5R5X1_UNORM
    px(4),           // 123 R10G10B10A2_USCALED
    px(4),           // 124 R11G11B10_FLOAT
    px(4),           // 125 R9G9B9E5_FLOAT
    px(8),           // 126 Z32_FLOAT_S8X24_UINT
    blk(1, 8, 1),    // 127 R1_UNORM
    px(4),           // 128 R10G10B10X2_USCALED
    px(4),           // 129 R10G10B10X2_SNORM
    px(1),           // 130 L4A4_UNORM
    px(4),           // 131 B10G10R10A2_UNORM
    px(4),           // 132 R10SG10SB10SA2U_NORM
    px(2),           // 133 R8G8Bx_SNORM
    px(4),           // 134 R8G8B8X8_UNORM
    px(2),           // 135 B4G4R4X4_UNORM
    px(4),           // 136 X24S8_UINT
    px(4),           // 137 S8X24_UINT
    px(8),           // 138 X32_S8X24_UINT
    px(1),           // 139 B2G3R3_UNORM
    px(4),           // 140 L16A16_UNORM
    px(2),           // 141 A16_UNORM
    px(2),           // 142 I16_UNORM
    blk(8, 4, 4),    // 143 LATC1_UNORM
    blk(8, 4, 4),    // 144 LATC1_SNORM
    blk(16, 4, 4),   // 145 LATC2_UNORM
    blk(16, 4, 4),   // 146 LATC2_SNORM
    px(1),           // 147 A8_SNORM
    px(1),           // 148 L8_SNORM
    px(2),           // 149 L8A8_SNORM
    px(1),           // 150 I8_SNORM
    px(2),           // 151 A16_SNORM
    px(2),           // 152 L16_SNORM
    px(4),           // 153 L16A16_SNORM
    px(2),           // 154 I16_SNORM
    px(2),           // 155 A16_FLOAT
    px(2),           // 156 L16_FLOAT
    px(4),           // 157 L16A16_FLOAT
    px(2),           // 158 I16_FLOAT
    px(4),           // 159 A32_FLOAT
    px(4),           // 160 L32_FLOAT
    px(8),           // 161 L32A32_FLOAT
    px(4),           // 162 I32_FLOAT
    None,            // 163 YV12 (planar)
    None,            // 164 YV16 (planar)
    None,            // 165 IYUV (planar)
    None,            // 166 NV12 (planar)
    None,            // 167 NV21 (planar)
    px(1),           // 168 A4R4_UNORM
    px(1),           // 169 R4A4_UNORM
    px(2),           // 170 R8A8_UNORM
    px(2),           // 171 A8R8_UNORM
    px(4),           // 172 R10G10B10A2_SSCALED
    px(4),           // 173 R10G10B10A2_SNORM
    px(4),           // 174 B10G10R10A2_USCALED
    px(4),           // 175 B10G10R10A2_SSCALED
    px(4),           // 176 B10G10R10A2_SNORM
    px(1),           // 177 R8_UINT
    px(2),           // 178 R8G8_UINT
    px(3),           // 179 R8G8B8_UINT
    px(4),           // 180 R8G8B8A8_UINT
    px(1),           // 181 R8_SINT
    px(2),           // 182 R8G8_SINT
    px(3),           // 183 R8G8B8_SINT
    px(4),           // 184 R8G8B8A8_SINT
    px(2),           // 185 R16_UINT
    px(4),           // 186 R16G16_UINT
    px(6),           // 187 R16G16B16_UINT
    px(8),           // 188 R16G16B16A16_UINT
    px(2),           // 189 R16_SINT
    px(4),           // 190 R16G16_SINT
    px(6),           // 191 R16G16B16_SINT
    px(8),           // 192 R16G16B16A16_SINT
    px(4),           // 193 R32_UINT
    px(8),           // 194 R32G32_UINT
    px(12),          // 195 R32G32B32_UINT
    px(16),          // 196 R32G32B32A32_UINT
    px(4),           // 197 R32_SINT
    px(8),           // 198 R32G32_SINT
    px(12),          // 199 R32G32B32_SINT
    px(16),          // 200 R32G32B32A32_SINT
    px(1),           // 201 A8_UINT
    px(1),           // 202 I8_UINT
    px(1),           // 203 L8_UINT
    px(2),           // 204 L8A8_UINT
    px(1),           // 205 A8_SINT
    px(1),           // 206 I8_SINT
    px(1),           // 207 L8_SINT
    px(2),           // 208 L8A8_SINT
    px(2),           // 209 A16_UINT
    px(2),           // 210 I16_UINT
    px(2),           // 211 L16_UINT
    px(4),           // 212 L16A16_UINT
    px(2),           // 213 A16_SINT
    px(2),           // 214 I16_SINT
    px(2),           // 215 L16_SINT
    px(4),           // 216 L16A16_SINT
    px(4),           // 217 A32_UINT
    px(4),           // 218 I32_UINT
    px(4),           // 219 L32_UINT
    px(8),           // 220 L32A32_UINT
    px(4),           // 221 A32_SINT
    px(4),           // 222 I32_SINT
    px(4),           // 223 L32_SINT
    px(8),           // 224 L32A32_SINT
    px(4),           // 225 B10G10R10A2_UINT
    blk(8, 4, 4),    // 226 ETC1_RGB8
    blk(4, 2, 1),    // 227 R8G8_R8B8_UNORM
    blk(4, 2, 1),    // 228 G8R8_B8R8_UNORM
    px(4),           // 229 R8G8B8X8_SNORM
    px(4),           // 230 R8G8B8X8_SRGB
    px(4),           // 231 R8G8B8X8_UINT
    px(4),           // 232 R8G8B8X8_SINT
    px(4),           // 233 B10G10R10X2_UNORM
    px(8),           // 234 R16G16B16X16_UNORM
    px(8),           // 235 R16G16B16X16_SNORM
    px(8),           // 236 R16G16B16X16_FLOAT
    px(8),           // 237 R16G16B16X16_UINT
    px(8),           // 238 R16G16B16X16_SINT
    px(16),          // 239 R32G32B32X32_FLOAT
    px(16),          // 240 R32G32B32X32_UINT
    px(16),          // 241 R32G32B32X32_SINT
    px(2),           // 242 R8A8_SNORM
    px(4),           // 243 R16A16_UNORM
    px(4),           // 244 R16A16_SNORM
    px(4),           // 245 R16A16_FLOAT
    px(8),           // 246 R32A32_FLOAT
    px(2),           // 247 R8A8_UINT
    px(2),           // 248 R8A8_SINT
    px(4),           // 249 R16A16_UINT
    px(4),           // 250 R16A16_SINT
    px(8),           // 251 R32A32_UINT
    px(8),           // 252 R32A32_SINT
    px(4),           // 253 R10G10B10A2_UINT
    px(2),           // 254 B5G6R5_SRGB
    blk(16, 4, 4),   // 255 BPTC_RGBA_UNORM
    blk(16, 4, 4),   // 256 BPTC_SRGBA
    blk(16, 4, 4),   // 257 BPTC_RGB_FLOAT
    blk(16, 4, 4),   // 258 BPTC_RGB_UFLOAT
    px(2),           // 259 A8L8_UNORM
    px(2),           // 260 A8L8_SNORM
    px(2),           // 261 A8L8_SRGB
    px(4),           // 262 A16L16_UNORM = A1B5G5R5_UNORM
    px(2),           // 263 G8R8_UNORM = A1R5G5B5_UNORM
    px(2),           // 264 G8R8_SNORM = A2B10G10R10_UNORM
    px(4),           // 265 G16R16_UNORM = A2R10G10B10_UNORM
    px(4),           // 266 G16R16_SNORM = A4R4G4B4_UNORM
    px(4),           // 267 A8B8G8R8_SNORM
    px(4),           // 268 X8B8G8R8_SNORM
    blk(8, 4, 4),    // 269 ETC2_RGB8
    blk(8, 4, 4),    // 270 ETC2_SRGB8
    blk(8, 4, 4),    // 271 ETC2_RGB8A1
    blk(8, 4, 4),    // 272 ETC2_SRGB8A1
    blk(16, 4, 4),   // 273 ETC2_RGBA8
    blk(16, 4, 4),   // 274 ETC2_SRGBA8
    blk(8, 4, 4),    // 275 ETC2_R11_UNORM
    blk(8, 4, 4),    // 276 ETC2_R11_SNORM
    blk(16, 4, 4),   // 277 ETC2_RG11_UNORM
    blk(16, 4, 4),   // 278 ETC2_RG11_SNORM
    blk(16, 4, 4),   // 279 ASTC_4x4
    blk(16, 5, 4),   // 280 ASTC_5x4
    blk(16, 5, 5),   // 281 ASTC_5x5
    blk(16, 6, 5),   // 282 ASTC_6x5
    blk(16, 6, 6),   // 283 ASTC_6x6
    blk(16, 8, 5),   // 284 ASTC_8x5
    blk(16, 8, 6),   // 285 ASTC_8x6
    blk(16, 8, 8),   // 286 ASTC_8x8
    blk(16, 10, 5),  // 287 ASTC_10x5
    blk(16, 10, 6),  // 288 ASTC_10x6
    blk(16, 10, 8),  // 289 ASTC_10x8
    blk(16, 10, 10), // 290 ASTC_10x10
    blk(16, 12, 10), // 291 ASTC_12x10
    blk(16, 12, 12), // 292 ASTC_12x12
    blk(16, 4, 4),   // 293 ASTC_4x4_SRGB
    blk(16, 5, 4),   // 294 ASTC_5x4_SRGB
    blk(16, 5, 5),   // 295 ASTC_5x5_SRGB
    blk(16, 6, 5),   // 296 ASTC_6x5_SRGB
    blk(16, 6, 6),   // 297 ASTC_6x6_SRGB
    blk(16, 8, 5),   // 298 ASTC_8x5_SRGB
    blk(16, 8, 6),   // 299 ASTC_8x6_SRGB
    blk(16, 8, 8),   // 300 ASTC_8x8_SRGB
    blk(16, 10, 5),  // 301 ASTC_10x5_SRGB
    blk(16, 10, 6),  // 302 ASTC_10x6_SRGB
    blk(16, 10, 8),  // 303 ASTC_10x8_SRGB
    blk(16, 10, 10), // 304 ASTC_10x10_SRGB
    blk(16, 12, 10), // 305 ASTC_12x10_SRGB
    blk(16, 12, 12), // 306 ASTC_12x12_SRGB
    None,            // 307 (no format has this value)
    px(4),           // 308 R10G10B10X2_UNORM
    None,            // 309 (no format has this value)
    None,            // 310 (no format has this value)
    px(2),           // 311 A4B4G4R4_UNORM
    px(1),           // 312 R8_SRGB
    px(2),           // 313 R8G8_SRGB
    None,            // 314 P010 (planar)
    None,            // 315 P012 (planar)
    None,            // 316 P016 (planar)
    px(3),           // 317 B8G8R8_UNORM
    px(1),           // 318 R3G3B2_UNORM
    px(2),           // 319 R4G4B4A4_UNORM
    px(2),           // 320 R5G5B5A1_UNORM
    px(2),           // 321 R5G6B5_UNORM
];

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(bytes: u32) -> Option<Block> {
        Some(Block {
            bytes,
            width: 1,
            height: 1,
        })
    }

    fn compressed(bytes: u32, width: u32, height: u32) -> Option<Block> {
        Some(Block {
            bytes,
            width,
            height,
        })
    }

    #[test]
    fn common_formats() {
        assert_eq!(block(67), plain(4), "R8G8B8A8_UNORM");
        assert_eq!(block(crate::format::R8G8B8A8_UNORM), plain(4));
        assert_eq!(block(crate::format::B8G8R8A8_UNORM), plain(4));
        assert_eq!(block(crate::format::B8G8R8X8_UNORM), plain(4));
        assert_eq!(block(7), plain(2), "B5G6R5_UNORM");
        assert_eq!(block(31), plain(16), "R32G32B32A32_FLOAT");
        assert_eq!(block(19), plain(4), "Z24_UNORM_S8_UINT");
        assert_eq!(block(64), plain(1), "R8_UNORM");
        assert_eq!(block(105), compressed(8, 4, 4), "DXT1_RGB");
        assert_eq!(block(108), compressed(16, 4, 4), "DXT5_RGBA");
    }

    #[test]
    fn packed_and_special_formats() {
        assert_eq!(block(126), plain(8), "Z32_FLOAT_S8X24_UINT");
        assert_eq!(block(138), plain(8), "X32_S8X24_UINT");
        assert_eq!(block(125), plain(4), "R9G9B9E5_FLOAT");
        assert_eq!(block(124), plain(4), "R11G11B10_FLOAT");
        assert_eq!(block(20), plain(4), "S8_UINT_Z24_UNORM");
        assert_eq!(block(23), plain(1), "S8_UINT");
        assert_eq!(block(27), plain(32), "R64G64B64A64_FLOAT");
        assert_eq!(block(66), plain(3), "R8G8B8_UNORM");
        assert_eq!(block(119), plain(4), "R8SG8SB8UX8U_NORM");
        assert_eq!(block(133), plain(2), "R8G8Bx_SNORM");
        assert_eq!(block(139), plain(1), "B2G3R3_UNORM");
        assert_eq!(block(236), plain(8), "R16G16B16X16_FLOAT");
        assert_eq!(block(14), compressed(4, 2, 1), "UYVY");
        assert_eq!(block(117), compressed(4, 2, 1), "R8G8_B8G8_UNORM");
        assert_eq!(block(127), compressed(1, 8, 1), "R1_UNORM");
        assert_eq!(block(116), compressed(16, 4, 4), "RGTC2_SNORM");
        assert_eq!(block(226), compressed(8, 4, 4), "ETC1_RGB8");
        assert_eq!(block(271), compressed(8, 4, 4), "ETC2_RGB8A1");
        assert_eq!(block(273), compressed(16, 4, 4), "ETC2_RGBA8");
        assert_eq!(block(278), compressed(16, 4, 4), "ETC2_RG11_SNORM");
        assert_eq!(block(257), compressed(16, 4, 4), "BPTC_RGB_FLOAT");
        assert_eq!(block(279), compressed(16, 4, 4), "ASTC_4x4");
        assert_eq!(block(287), compressed(16, 10, 5), "ASTC_10x5");
        assert_eq!(block(306), compressed(16, 12, 12), "ASTC_12x12_SRGB");
        // The doubly named values follow the host's description table.
        assert_eq!(block(262), plain(4), "A16L16_UNORM");
        assert_eq!(block(264), plain(2), "G8R8_SNORM");
        assert_eq!(block(317), plain(3), "B8G8R8_UNORM");
        assert_eq!(block(321), plain(2), "R5G6B5_UNORM");
    }

    #[test]
    fn holes_planar_and_out_of_range_are_unknown() {
        for hole in [0, 73, 78, 79, 80, 81, 86, 307, 309, 310] {
            assert_eq!(block(hole), None, "format {hole}");
        }
        for planar in [163, 164, 165, 166, 167, 314, 315, 316] {
            assert_eq!(block(planar), None, "format {planar}");
        }
        assert_eq!(block(FORMAT_MAX), None);
        assert_eq!(block(FORMAT_MAX + 1), None);
        assert_eq!(block(u32::MAX), None);
    }

    #[test]
    fn every_known_block_is_sane() {
        let known = (0..FORMAT_MAX).filter_map(block).count();
        // 322 values less NONE, 9 holes and 8 planar formats.
        assert_eq!(known, 304);
        for format in 0..FORMAT_MAX {
            if let Some(b) = block(format) {
                assert!(b.bytes.is_power_of_two() || b.bytes % 3 == 0, "{format}");
                assert!((1..=12).contains(&b.width) && (1..=12).contains(&b.height));
            }
        }
    }
}
