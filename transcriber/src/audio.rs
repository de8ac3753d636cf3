//! Any voice note to what Whisper hears: 16 kHz mono `f32` samples. Containers are read by
//! symphonia (Ogg, WebM/Matroska, WAV, MP4...); Opus, the codec of WhatsApp's and Telegram's voice
//! notes and of browser recordings, is decoded by libopus straight at 16 kHz; other codecs by
//! symphonia, then resampled with rubato.

use std::io::Cursor;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, CODEC_TYPE_OPUS, CodecParameters, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Whisper's sample rate.
pub const RATE: u32 = 16_000;

/// Sample rates a recording may declare: a rate outside them is no voice note, and an absurd one
/// (a crafted header) would make the length check and the resampler allocate without bound.
const RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// Most channels a recording may have (each is decoded before the downmix).
const MAX_CHANNELS: usize = 8;

/// Why a recording gives no samples.
#[derive(Debug)]
pub enum AudioError {
    /// Longer than allowed; decoding stopped there.
    TooLong {
        /// The limit it passed, in seconds.
        limit: f64,
    },
    /// Not a recording this can read (unknown container or codec, broken data).
    Unreadable(String),
}

impl std::fmt::Display for AudioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong { limit } => write!(f, "longer than {limit} s"),
            Self::Unreadable(why) => f.write_str(why),
        }
    }
}

fn unreadable(e: impl std::fmt::Display) -> AudioError {
    AudioError::Unreadable(e.to_string())
}

/// Decode `bytes` to 16 kHz mono; stops with [`AudioError::TooLong`] past `max_secs`.
pub fn decode(bytes: Vec<u8>, max_secs: f64) -> Result<Vec<f32>, AudioError> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| unreadable(format!("not a recording: {e}")))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| unreadable("no audio track"))?;
    let (track_id, params) = (track.id, track.codec_params.clone());
    if params.channels.is_some_and(|c| c.count() > MAX_CHANNELS) {
        return Err(unreadable("too many channels for a voice note"));
    }
    let limit = Limit {
        max_secs,
        rate: params.sample_rate.unwrap_or(RATE),
    };
    if params.codec == CODEC_TYPE_OPUS {
        opus(format.as_mut(), track_id, &params, max_secs)
    } else {
        let (samples, rate) = other(format.as_mut(), track_id, &params, limit)?;
        resample(&samples, rate)
    }
}

/// When decoding stops.
#[derive(Clone, Copy)]
struct Limit {
    max_secs: f64,
    rate: u32,
}

impl Limit {
    fn check(self, samples: usize) -> Result<(), AudioError> {
        // A second of slack: a recording stopped right at the limit still counts as under it.
        if samples as f64 > (self.max_secs + 1.0) * f64::from(self.rate) {
            return Err(AudioError::TooLong {
                limit: self.max_secs,
            });
        }
        Ok(())
    }
}

/// The next packet of `track`, or `None` at the end of the stream.
fn next_packet(
    format: &mut dyn FormatReader,
    track: u32,
) -> Result<Option<symphonia::core::formats::Packet>, AudioError> {
    loop {
        match format.next_packet() {
            Ok(packet) if packet.track_id() == track => return Ok(Some(packet)),
            Ok(_) => {}
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(None);
            }
            Err(SymphoniaError::ResetRequired) => return Ok(None),
            Err(e) => return Err(unreadable(e)),
        }
    }
}

/// Opus through libopus, decoded at 16 kHz mono (libopus downmixes stereo itself).
fn opus(
    format: &mut dyn FormatReader,
    track: u32,
    params: &CodecParameters,
    max_secs: f64,
) -> Result<Vec<f32>, AudioError> {
    let mut decoder = opus::Decoder::new(RATE, opus::Channels::Mono).map_err(unreadable)?;
    let limit = Limit {
        max_secs,
        rate: RATE,
    };
    // 120 ms, Opus's longest frame.
    let mut frame = vec![0f32; RATE as usize * 120 / 1000];
    let mut samples = Vec::new();
    while let Some(packet) = next_packet(format, track)? {
        match decoder.decode_float(&packet.data, &mut frame, false) {
            Ok(n) => samples.extend_from_slice(&frame[..n]),
            // One damaged packet costs its few milliseconds, not the note.
            Err(_) => continue,
        }
        limit.check(samples.len())?;
    }
    // The encoder's pre-skip, counted at 48 kHz.
    let skip = params.delay.unwrap_or(0) as usize / 3;
    samples.drain(..skip.min(samples.len()));
    Ok(samples)
}

/// Codecs symphonia decodes; mono at the recording's own rate.
fn other(
    format: &mut dyn FormatReader,
    track: u32,
    params: &CodecParameters,
    limit: Limit,
) -> Result<(Vec<f32>, u32), AudioError> {
    let mut decoder = symphonia::default::get_codecs()
        .make(params, &DecoderOptions::default())
        .map_err(|e| unreadable(format!("unsupported audio: {e}")))?;
    let mut samples = Vec::new();
    let mut rate = params.sample_rate;
    while let Some(packet) = next_packet(format, track)? {
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(unreadable(e)),
        };
        let spec = *decoded.spec();
        if !RATES.contains(&spec.rate) || spec.channels.count() > MAX_CHANNELS {
            return Err(unreadable(format!(
                "{} Hz, {} channels: not a voice note",
                spec.rate,
                spec.channels.count()
            )));
        }
        rate = Some(spec.rate);
        let channels = spec.channels.count().max(1);
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buffer.copy_interleaved_ref(decoded);
        samples.extend(
            buffer
                .samples()
                .chunks(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        Limit {
            rate: spec.rate,
            ..limit
        }
        .check(samples.len())?;
    }
    let rate = rate.ok_or_else(|| unreadable("no sample rate"))?;
    Ok((samples, rate))
}

/// `samples` at `rate` to 16 kHz.
fn resample(samples: &[f32], rate: u32) -> Result<Vec<f32>, AudioError> {
    if rate == RATE || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let mut resampler = Fft::<f32>::new(rate as usize, RATE as usize, 1024, 1, FixedSync::Input)
        .map_err(unreadable)?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(unreadable)?;
    let mut out = vec![0f32; resampler.process_all_needed_output_len(samples.len())];
    let frames = out.len();
    let mut output = InterleavedSlice::new_mut(&mut out, 1, frames).map_err(unreadable)?;
    let (_, written) = resampler
        .process_all_into_buffer(&input, &mut output, samples.len(), None)
        .map_err(unreadable)?;
    out.truncate(written);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV file of `seconds` of a 440 Hz tone at `rate`.
    fn wav(rate: u32, seconds: f64) -> Vec<u8> {
        let n = (f64::from(rate) * seconds) as usize;
        let data: Vec<u8> = (0..n)
            .flat_map(|i| {
                let t = i as f64 / f64::from(rate);
                (((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16).to_le_bytes()
            })
            .collect();
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn a_wav_at_another_rate_comes_out_at_16_khz() {
        let samples = decode(wav(44_100, 2.0), 30.0).expect("decodes");
        let seconds = samples.len() as f64 / f64::from(RATE);
        assert!((seconds - 2.0).abs() < 0.1, "{seconds} s");
        let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.1, "the tone survives resampling: peak {peak}");
    }

    #[test]
    fn a_recording_over_the_limit_is_refused() {
        assert!(matches!(
            decode(wav(16_000, 3.5), 2.0),
            Err(AudioError::TooLong { .. })
        ));
        // A second of slack for a recording stopped right at the limit.
        assert!(decode(wav(16_000, 2.8), 2.0).is_ok());
    }

    #[test]
    fn a_rate_no_voice_note_has_is_refused_before_anything_grows() {
        assert!(matches!(
            decode(wav(192_000, 0.1), 30.0),
            Err(AudioError::Unreadable(_))
        ));
    }

    #[test]
    fn bytes_that_are_no_recording_are_unreadable() {
        assert!(matches!(
            decode(b"%PDF-1.4 not audio".to_vec(), 30.0),
            Err(AudioError::Unreadable(_))
        ));
    }
}
