#include "vigil/source/generator.h"

#include "vigil/common/json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

// Keep the generated numbers identical across compilers and -march levels (see below).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace vigil::source {
namespace {

// ---------------------------------------------------------------------------------------
// Deterministic randomness.
//
// The output must be identical on every platform for a seed, so nothing here uses std::
// distributions (implementation-defined) or libm's exp/log (may differ in the last ulp).
// Only IEEE-754 basic operations, sqrt, frexp/ldexp and rounding are used, all exactly
// specified, and floating-point contraction is off for this file: fusing a*b+c into an FMA
// (GCC does it by default for C++ when -march has FMA, clang within an expression) rounds
// differently from separate operations. Integer arithmetic is used wherever it can be.
// Never draw twice within one function call's arguments: their evaluation order is
// unspecified (GCC and clang differ).
// ---------------------------------------------------------------------------------------

constexpr double kLn2 = 0.6931471805599453094;
constexpr double kInvLn2 = 1.4426950408889634074;
constexpr double kSqrtHalf = 0.7071067811865475244;

// Natural logarithm for x > 0 (accurate to a few ulp): x = m * 2^e with m in [sqrt(.5),
// sqrt(2)), log(m) = 2 atanh(s) with s = (m-1)/(m+1), |s| < 0.172, by its odd series.
double Log(double x) {
  int e = 0;
  double m = std::frexp(x, &e);
  if (m < kSqrtHalf) {
    m *= 2;
    --e;
  }
  const double s = (m - 1) / (m + 1);
  const double s2 = s * s;
  // 1/3 + s2/5 + s2^2/7 + ... + s2^9/21, by Horner from the highest term.
  double p = 1.0 / 21;
  for (int k = 19; k >= 3; k -= 2) {
    p *= s2;
    p += 1.0 / k;
  }
  const double tail = s2 * p;       // s2/3 + s2^2/5 + ...
  const double series = s * tail;   // s^3/3 + s^5/5 + ...
  const double atanh = s + series;  // atanh(s)
  const double le = static_cast<double>(e) * kLn2;
  const double twice = 2 * atanh;
  return le + twice;
}

// e^x for |x| < 700: x = k ln2 + r with |r| <= ln2/2, e^r by its Taylor series.
double Exp(double x) {
  x = std::clamp(x, -700.0, 700.0);
  const double scaled = x * kInvLn2;
  const double k = std::floor(scaled + 0.5);
  const double kl = k * kLn2;
  const double r = x - kl;
  double p = 1.0 / 6227020800.0;  // 1/13!
  double fact = 6227020800.0;
  for (int n = 13; n >= 1; --n) {
    fact /= n;  // (n-1)!
    p *= r;
    p += 1.0 / fact;
  }
  return std::ldexp(p, static_cast<int>(k));
}

// splitmix64's output function: a good 64-bit mixer.
uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64(uint64_t& state) { return Mix64(state += 0x9e3779b97f4a7c15ULL); }

// xoshiro256** seeded through splitmix64, with the few distributions the generator needs.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t x = seed;
    for (uint64_t& w : s_) w = SplitMix64(x);
  }

  uint64_t Bits() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n), unbiased (rejects the short top range). n > 0.
  uint64_t Below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
      const uint64_t x = Bits();
      if (x >= threshold) return x % n;
    }
  }
  // Uniform integer in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Bits() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) {
    const double span = (hi - lo) * Uniform();
    return lo + span;
  }
  bool Chance(double p) { return Uniform() < p; }

  // Exponential with mean 1.
  double Exponential() { return -Log(1.0 - Uniform()); }

  // Standard normal, Marsaglia's polar method (pairs; the second value is kept).
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u = 0;
    double v = 0;
    double s = 0;
    do {
      u = Uniform(-1.0, 1.0);
      v = Uniform(-1.0, 1.0);
      const double uu = u * u;
      const double vv = v * v;
      s = uu + vv;
    } while (s >= 1.0 || s == 0.0);
    const double factor = std::sqrt(-2.0 * Log(s) / s);
    spare_ = v * factor;
    has_spare_ = true;
    return u * factor;
  }

  // Log-normal with the given median and log-space standard deviation.
  double LogNormal(double median, double sigma) { return median * Exp(sigma * Normal()); }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

// ---------------------------------------------------------------------------------------
// Static tables.
// ---------------------------------------------------------------------------------------

struct City {
  const char* name;
  double lat;
  double lon;
  std::string_view country;
  int utc_offset_min;  // standard time; daylight saving is ignored
  int weight;          // share of cards and merchants
};

constexpr City kCities[] = {
    {"New York", 40.7128, -74.0060, "US", -300, 8},
    {"Los Angeles", 34.0522, -118.2437, "US", -480, 6},
    {"Chicago", 41.8781, -87.6298, "US", -360, 5},
    {"Houston", 29.7604, -95.3698, "US", -360, 4},
    {"Phoenix", 33.4484, -112.0740, "US", -420, 3},
    {"Miami", 25.7617, -80.1918, "US", -300, 3},
    {"San Francisco", 37.7749, -122.4194, "US", -480, 3},
    {"Seattle", 47.6062, -122.3321, "US", -480, 2},
    {"Boston", 42.3601, -71.0589, "US", -300, 2},
    {"Atlanta", 33.7490, -84.3880, "US", -300, 2},
    {"Dallas", 32.7767, -96.7970, "US", -360, 3},
    {"Denver", 39.7392, -104.9903, "US", -420, 2},
    {"Toronto", 43.6532, -79.3832, "CA", -300, 3},
    {"Vancouver", 49.2827, -123.1207, "CA", -480, 2},
    {"Mexico City", 19.4326, -99.1332, "MX", -360, 3},
    {"Sao Paulo", -23.5505, -46.6333, "BR", -180, 3},
    {"Buenos Aires", -34.6037, -58.3816, "AR", -180, 2},
    {"Bogota", 4.7110, -74.0721, "CO", -300, 1},
    {"Lima", -12.0464, -77.0428, "PE", -300, 1},
    {"London", 51.5074, -0.1278, "GB", 0, 5},
    {"Paris", 48.8566, 2.3522, "FR", 60, 4},
    {"Berlin", 52.5200, 13.4050, "DE", 60, 3},
    {"Madrid", 40.4168, -3.7038, "ES", 60, 3},
    {"Rome", 41.9028, 12.4964, "IT", 60, 2},
    {"Amsterdam", 52.3676, 4.9041, "NL", 60, 2},
    {"Stockholm", 59.3293, 18.0686, "SE", 60, 1},
    {"Warsaw", 52.2297, 21.0122, "PL", 60, 1},
    {"Istanbul", 41.0082, 28.9784, "TR", 180, 2},
    {"Dubai", 25.2048, 55.2708, "AE", 240, 2},
    {"Johannesburg", -26.2041, 28.0473, "ZA", 120, 1},
    {"Lagos", 6.5244, 3.3792, "NG", 60, 1},
    {"Nairobi", -1.2921, 36.8219, "KE", 180, 1},
    {"Cairo", 30.0444, 31.2357, "EG", 120, 1},
    {"Mumbai", 19.0760, 72.8777, "IN", 330, 3},
    {"Delhi", 28.7041, 77.1025, "IN", 330, 2},
    {"Singapore", 1.3521, 103.8198, "SG", 480, 2},
    {"Hong Kong", 22.3193, 114.1694, "HK", 480, 2},
    {"Tokyo", 35.6762, 139.6503, "JP", 540, 4},
    {"Seoul", 37.5665, 126.9780, "KR", 540, 2},
    {"Sydney", -33.8688, 151.2093, "AU", 600, 3},
    {"Melbourne", -37.8136, 144.9631, "AU", 600, 2},
    {"Auckland", -36.8485, 174.7633, "NZ", 720, 1},
    {"Bangkok", 13.7563, 100.5018, "TH", 420, 1},
    {"Manila", 14.5995, 120.9842, "PH", 480, 1},
};
constexpr size_t kCityCount = std::size(kCities);

// Category flags.
constexpr uint8_t kBigTicket = 1;    // legit big one-off purchases (furniture, travel, ...)
constexpr uint8_t kHighRisk = 2;     // stolen-card sprees (resellable goods, cash)
constexpr uint8_t kSmallOnline = 4;  // card-testing targets (online, tiny amounts pass)
constexpr uint8_t kAtoTarget = 8;    // account-takeover targets (online, resellable)

struct Category {
  uint16_t mcc;
  double median_usd;  // for a card with spending scale 1
  double sigma;       // log-space spread
  int weight;         // share of merchants
  int mix;            // share of a card's normal transactions
  double online_share;
  uint8_t flags;
};

constexpr Category kCategories[] = {
    {5411, 45.0, 0.70, 18, 160, 0.05, 0},                                    // grocery
    {5812, 32.0, 0.60, 14, 130, 0.00, 0},                                    // restaurants
    {5814, 11.0, 0.45, 10, 120, 0.05, 0},                                    // fast food
    {5541, 48.0, 0.40, 8, 70, 0.00, 0},                                      // fuel
    {5311, 65.0, 0.80, 6, 50, 0.40, kBigTicket | kAtoTarget},                // department
    {5651, 60.0, 0.70, 4, 40, 0.30, 0},                                      // clothing
    {5912, 22.0, 0.60, 6, 60, 0.00, 0},                                      // drug stores
    {5999, 35.0, 0.90, 7, 60, 0.40, kHighRisk | kSmallOnline | kAtoTarget},  // misc retail
    {5732, 140.0, 0.90, 3, 15, 0.50, kBigTicket | kHighRisk | kAtoTarget},   // electronics
    {4111, 2.75, 0.25, 4, 80, 0.00, 0},                                      // transit
    {4121, 18.0, 0.50, 4, 40, 0.60, 0},                                      // taxis, ride share
    {5815, 9.0, 0.70, 4, 60, 1.00, kSmallOnline},                            // digital goods
    {5967, 30.0, 0.80, 2, 15, 1.00, kSmallOnline | kAtoTarget},              // direct marketing
    {5944, 260.0, 0.90, 1, 3, 0.20, kHighRisk | kBigTicket | kAtoTarget},    // jewelry
    {6011, 100.0, 0.60, 5, 40, 0.00, kHighRisk},                             // ATM cash
    {7995, 50.0, 1.00, 1, 5, 0.80, 0},                                       // gambling
    {5712, 450.0, 0.70, 1, 2, 0.30, kBigTicket},                             // furniture
    {4722, 700.0, 0.60, 1, 3, 0.70, kBigTicket | kAtoTarget},                // travel agencies
    {4511, 420.0, 0.60, 1, 3, 1.00, kBigTicket},                             // airlines
    {7011, 180.0, 0.60, 2, 5, 0.30, 0},                                      // hotels
};
constexpr size_t kCategoryCount = std::size(kCategories);
constexpr uint16_t kMccAtm = 6011;
constexpr uint16_t kMccTransit = 4111;

const Category& CategoryOf(uint16_t mcc) {
  for (const Category& c : kCategories) {
    if (c.mcc == mcc) return c;
  }
  throw std::logic_error("generator: unknown mcc");
}

// Merchants every population has, so each pattern always finds a target.
struct Anchor {
  uint16_t mcc;
  bool online;
};
constexpr Anchor kAnchors[] = {
    {5815, true}, {5967, true},  {5999, true},  {5732, true},  {4722, true},  {4511, true},
    {5311, true}, {5732, false}, {5944, false}, {6011, false}, {5999, false}, {5712, false},
};

// Relative transaction intensity by local hour: quiet at night, peaks at lunch and evening;
// weekends start later and lean to the afternoon.
constexpr double kWeekdayIntensity[24] = {0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.60,
                                          0.90, 1.00, 1.10, 1.40, 1.70, 1.40, 1.10, 1.00,
                                          1.10, 1.40, 1.70, 1.60, 1.30, 1.00, 0.70, 0.45};
constexpr double kWeekendIntensity[24] = {0.40, 0.30, 0.20, 0.12, 0.08, 0.08, 0.12, 0.25,
                                          0.50, 0.80, 1.10, 1.40, 1.60, 1.60, 1.50, 1.40,
                                          1.40, 1.50, 1.70, 1.60, 1.40, 1.10, 0.80, 0.55};

constexpr int64_t kMsUs = 1000;
constexpr int64_t kSecondUs = 1000 * kMsUs;
constexpr int64_t kMinuteUs = 60 * kSecondUs;
constexpr int64_t kHourUs = 60 * kMinuteUs;
constexpr int64_t kDayUs = 24 * kHourUs;

constexpr double kTypicalUsd = 40.0;  // a scale-1 card's usual purchase, for fraud amounts
constexpr double kOutlierShare = 0.003;
constexpr double kFarKm = 1000.0;

// Pattern mix and mean sequence lengths, used to turn the target fraud share into an
// injection rate.
constexpr double kCardTestingShare = 0.35;
constexpr double kTakeoverShare = 0.30;  // the rest are spending sprees
constexpr double kMeanFraudLength = kCardTestingShare * (12.5 + 0.4) + kTakeoverShare * 2.4 +
                                    (1 - kCardTestingShare - kTakeoverShare) * 10.0;
constexpr double kTripShare = 0.4;  // of legit outliers; the rest are big purchases
constexpr double kMeanOutlierLength = kTripShare * 6.5 + (1 - kTripShare) * 1.0;

constexpr uint64_t kMaxEvents = 999'999'999'999;  // event ids have 12 digits
constexpr uint64_t kMaxCards = 50'000'000;
constexpr uint64_t kMaxMerchants = 999'999;  // merchant ids have 6 digits

int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int32_t ToE4(double degrees) { return static_cast<int32_t>(std::llround(degrees * 1e4)); }

// Great-circle distance; only used to classify fixed city pairs, all of which are more than
// 20 km away from the 1000 km threshold, so libm rounding cannot change the outcome.
double HaversineKm(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRad = 3.14159265358979323846 / 180.0;
  const double dlat = (lat2 - lat1) * kRad;
  const double dlon = (lon2 - lon1) * kRad;
  const double a =
      std::sin(dlat / 2) * std::sin(dlat / 2) +
      std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * 6371.0088 * std::asin(std::sqrt(a));
}

// ---------------------------------------------------------------------------------------
// Text formatting (integer-only, so it is exact and fast).
// ---------------------------------------------------------------------------------------

void AppendUint(std::string& out, uint64_t v) {
  char buf[20];
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append(p, buf + sizeof buf);
}

void AppendZeroPadded(std::string& out, uint64_t v, int width) {
  char buf[20];
  char* p = buf + sizeof buf;
  int n = 0;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
    ++n;
  } while (v != 0 || n < width);
  out.append(p, buf + sizeof buf);
}

// value / 10^decimals with exactly `decimals` digits after the point.
void AppendFixed(std::string& out, int64_t value, int decimals) {
  uint64_t scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  if (value < 0) out += '-';
  const uint64_t mag = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  AppendUint(out, mag / scale);
  out += '.';
  AppendZeroPadded(out, mag % scale, decimals);
}

// 2026-01-01T08:15:30.250Z
void AppendIsoMillis(std::string& out, int64_t us) {
  const int64_t days = FloorDiv(us, kDayUs);
  const int64_t in_day = us - days * kDayUs;
  // Howard Hinnant's civil_from_days.
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const uint64_t doe = static_cast<uint64_t>(z - era * 146097);
  const uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const uint64_t mp = (5 * doy + 2) / 153;
  const uint64_t d = doy - (153 * mp + 2) / 5 + 1;
  const uint64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  AppendZeroPadded(out, static_cast<uint64_t>(y), 4);
  out += '-';
  AppendZeroPadded(out, m, 2);
  out += '-';
  AppendZeroPadded(out, d, 2);
  out += 'T';
  AppendZeroPadded(out, static_cast<uint64_t>(in_day / kHourUs), 2);
  out += ':';
  AppendZeroPadded(out, static_cast<uint64_t>(in_day / kMinuteUs % 60), 2);
  out += ':';
  AppendZeroPadded(out, static_cast<uint64_t>(in_day / kSecondUs % 60), 2);
  out += '.';
  AppendZeroPadded(out, static_cast<uint64_t>(in_day / kMsUs % 1000), 3);
  out += 'Z';
}

void AppendHex16(std::string& out, uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[16];
  for (int i = 15; i >= 0; --i) {
    buf[i] = kHex[v & 15];
    v >>= 4;
  }
  out.append(buf, 16);
}

}  // namespace

std::string_view PatternName(Pattern p) {
  switch (p) {
    case Pattern::kNormal:
      return "normal";
    case Pattern::kCardTesting:
      return "card_testing";
    case Pattern::kAccountTakeover:
      return "account_takeover";
    case Pattern::kSpendingSpree:
      return "spending_spree";
    case Pattern::kLegitOutlier:
      return "legit_outlier";
  }
  return "?";
}

std::string_view ChannelName(Channel c) {
  switch (c) {
    case Channel::kPos:
      return "pos";
    case Channel::kEcom:
      return "ecom";
    case Channel::kAtm:
      return "atm";
    case Channel::kContactless:
      return "contactless";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------
// The simulation.
//
// Every card has its next normal transaction scheduled in a min-heap keyed by (time,
// insertion sequence), which makes the order total and hence deterministic. Two injector
// entries fire at exponential intervals and schedule a whole fraud pattern or legit outlier
// (its transactions are kept in a pool until their time comes). Popping the heap yields
// records in non-decreasing time.
// ---------------------------------------------------------------------------------------

struct CardFraudGenerator::Impl {
  struct Card {
    char number[16];
    uint32_t account;
    uint8_t home_city;
    uint8_t device_count;
    bool compromised;  // already victim of a fraud pattern (one per card keeps labels clean)
    int32_t home_lat_e4;
    int32_t home_lon_e4;
    uint64_t devices[2];
    uint64_t salt;          // picks the card's favourite merchants (see NormalTxn)
    double scale;           // spending scale: amounts are about category median * scale
    double mean_gap_us;     // mean gap between candidate transactions (before thinning)
    int64_t away_until_us;  // on a trip: no normal home traffic until then
  };

  struct Merchant {
    uint8_t category;  // index into kCategories
    uint8_t city;
    uint8_t terminals;
    bool online;
    int32_t lat_e4;
    int32_t lon_e4;
  };

  // A scheduled transaction, before formatting.
  struct Txn {
    int64_t ts_us;
    int64_t amount_cents;
    uint64_t device;  // customer device fingerprint, when terminal == 0
    uint32_t card;
    uint32_t merchant;
    int32_t lat_e4;
    int32_t lon_e4;
    uint8_t terminal;  // 1-based terminal at the merchant; 0: customer device
    uint8_t city;      // where the transaction happens (its country)
    Channel channel;
    Pattern pattern;
  };

  enum class Kind : uint8_t { kCardNext, kFraudInjector, kOutlierInjector, kPending };
  struct Slot {
    int64_t ts_us;
    uint64_t seq;
    uint32_t index;  // card (kCardNext) or pool slot (kPending)
    Kind kind;
  };
  struct Later {
    bool operator()(const Slot& a, const Slot& b) const {
      return a.ts_us != b.ts_us ? a.ts_us > b.ts_us : a.seq > b.seq;
    }
  };

  // Merchant indices grouped into numbered buckets, stored compressed.
  struct Buckets {
    std::vector<uint32_t> begin;  // bucket count + 1 offsets into `items`
    std::vector<uint32_t> items;
    size_t Size(size_t bucket) const { return begin[bucket + 1] - begin[bucket]; }
    uint32_t At(size_t bucket, size_t i) const { return items[begin[bucket] + i]; }
  };

  explicit Impl(const GeneratorOptions& options);

  bool Next(CardTxn& out);

  // Population.
  void BuildMerchants(uint64_t count);
  void BuildCards(uint64_t count);
  // Groups the merchants by `bucket_of(merchant)`, which returns < count or count to skip.
  template <typename BucketOf>
  Buckets Group(size_t count, BucketOf bucket_of) const;
  // Physical merchants of a city, of every category: one contiguous run of `local_`.
  size_t CityMerchantCount(size_t city) const {
    return local_.begin[(city + 1) * kCategoryCount] - local_.begin[city * kCategoryCount];
  }
  uint32_t CityMerchant(size_t city, size_t i) const {
    return local_.items[local_.begin[city * kCategoryCount] + i];
  }
  uint32_t RandomCityMerchant(size_t city) {
    return CityMerchant(city, rng_.Below(CityMerchantCount(city)));
  }
  size_t PickWeightedCity();
  uint32_t PickFrom(const std::vector<uint32_t>& list) {
    return list[static_cast<size_t>(rng_.Below(list.size()))];
  }
  size_t PickFarCity(size_t from);
  size_t PickCategory();  // by the spending mix

  // Scheduling.
  void Push(int64_t ts_us, Kind kind, uint32_t index);
  double Intensity(int64_t ts_us, int utc_offset_min) const;
  int64_t NextCardTime(const Card& card, int64_t from_us);
  int64_t NextInjection(int64_t from_us, double mean_gap_us);
  void Schedule(const Txn& txn);

  // Transactions and patterns.
  int64_t DrawCents(const Category& category, double scale);
  int64_t TypicalCents(const Card& card, double lo, double hi);
  Txn PhysicalTxn(uint32_t card, uint32_t merchant, int64_t ts_us, int64_t cents, Pattern pattern);
  Txn OnlineTxn(uint32_t card, uint32_t merchant, int64_t ts_us, int64_t cents, uint64_t device,
                size_t city, int32_t lat_e4, int32_t lon_e4, Pattern pattern);
  Txn NormalTxn(uint32_t card_index, int64_t ts_us);
  uint32_t PickVictim();
  void InjectFraud(int64_t ts_us);
  void CardTesting(uint32_t card, int64_t ts_us);
  void AccountTakeover(uint32_t card, int64_t ts_us);
  void SpendingSpree(uint32_t card, int64_t ts_us);
  void InjectOutlier(int64_t ts_us);
  void BigPurchase(uint32_t card, int64_t ts_us);
  bool Trip(uint32_t card, int64_t ts_us);

  void Format(const Txn& txn, CardTxn& out);

  GeneratorOptions options_;
  Rng rng_;
  std::vector<Card> cards_;
  std::vector<Merchant> merchants_;
  std::vector<uint32_t> online_;        // all online merchants
  std::vector<uint32_t> online_small_;  // card-testing targets
  std::vector<uint32_t> online_ato_;    // account-takeover targets
  std::vector<uint32_t> online_big_;    // big-ticket online merchants
  std::vector<uint32_t> physical_;      // all physical merchants
  std::vector<uint32_t> physical_high_risk_;
  Buckets local_;  // physical merchants by city * kCategoryCount + category
  Buckets online_by_category_;
  Buckets city_high_risk_;    // physical high-risk merchants by city
  std::vector<uint8_t> far_;  // kCityCount^2: 1 when the cities are > kFarKm apart
  double max_intensity_ = 0;
  double intensity_norm_ = 1;  // makes the weekly mean intensity 1
  double fraud_gap_us_ = 0;    // mean gap between fraud patterns; 0: none
  double outlier_gap_us_ = 0;

  std::vector<Slot> heap_;
  uint64_t seq_ = 0;
  std::vector<Txn> pool_;
  std::vector<uint32_t> free_;
  GeneratorStats stats_;
};

namespace {

GeneratorOptions Validated(GeneratorOptions o) {
  if (std::find(kGeneratorScenarios.begin(), kGeneratorScenarios.end(), o.scenario) ==
      kGeneratorScenarios.end()) {
    std::string known;
    for (std::string_view s : kGeneratorScenarios) {
      if (!known.empty()) known += ", ";
      known += s;
    }
    throw std::invalid_argument(
        fmt::format("unknown generator scenario '{}' (known: {})", o.scenario, known));
  }
  if (o.events > kMaxEvents) {
    throw std::invalid_argument(
        fmt::format("generator events {} is too many (at most {})", o.events, kMaxEvents));
  }
  if (!(o.fraud_rate >= 0.0 && o.fraud_rate <= 0.5)) {
    throw std::invalid_argument(
        fmt::format("generator fraud_rate {} must be within [0, 0.5]", o.fraud_rate));
  }
  // Leave room for years of simulated time before Vigil's 2200-01-01 limit.
  constexpr int64_t kLatestStartUs = 7005657600LL * 1000000;  // 2192-01-01
  if (o.start_us < 0 || o.start_us > kLatestStartUs) {
    throw std::invalid_argument("generator start time must be between 1970-01-01 and 2192-01-01");
  }
  o.start_us -= o.start_us % kMsUs;  // records carry whole milliseconds
  if (o.cards == 0) o.cards = std::max<uint64_t>(200, o.events / 150);
  if (o.cards > kMaxCards) {
    throw std::invalid_argument(
        fmt::format("generator cards {} is too many (at most {})", o.cards, kMaxCards));
  }
  if (o.merchants == 0) {
    o.merchants = std::min<uint64_t>(kMaxMerchants, std::max<uint64_t>(100, o.cards / 5));
  }
  if (o.merchants < 20 || o.merchants > kMaxMerchants) {
    throw std::invalid_argument(
        fmt::format("generator merchants {} must be within [20, {}]", o.merchants, kMaxMerchants));
  }
  return o;
}

}  // namespace

CardFraudGenerator::Impl::Impl(const GeneratorOptions& options)
    : options_(Validated(options)), rng_(options_.seed) {
  far_.resize(kCityCount * kCityCount);
  for (size_t a = 0; a < kCityCount; ++a) {
    for (size_t b = 0; b < kCityCount; ++b) {
      const double km = HaversineKm(kCities[a].lat, kCities[a].lon, kCities[b].lat, kCities[b].lon);
      far_[a * kCityCount + b] = km > kFarKm ? 1 : 0;
    }
  }

  double sum = 0;
  for (int h = 0; h < 24; ++h) {
    const double weekdays = 5 * kWeekdayIntensity[h];
    const double weekend = 2 * kWeekendIntensity[h];
    sum += weekdays;
    sum += weekend;
    max_intensity_ = std::max({max_intensity_, kWeekdayIntensity[h], kWeekendIntensity[h]});
  }
  intensity_norm_ = (7 * 24) / sum;
  max_intensity_ *= intensity_norm_;

  BuildMerchants(options_.merchants);
  BuildCards(options_.cards);

  // Turn the target shares into injection rates: with R normal transactions a day, the total
  // is T = R / (1 - fraud - outliers), and patterns of mean length L arrive share * T / L
  // times a day.
  double normal_per_day = 0;
  for (const Card& c : cards_) normal_per_day += static_cast<double>(kDayUs) / c.mean_gap_us;
  normal_per_day /= max_intensity_;
  const double total_per_day = normal_per_day / (1 - options_.fraud_rate - kOutlierShare);
  if (options_.fraud_rate > 0) {
    const double per_day = options_.fraud_rate * total_per_day / kMeanFraudLength;
    fraud_gap_us_ = static_cast<double>(kDayUs) / per_day;
  }
  outlier_gap_us_ =
      static_cast<double>(kDayUs) / (kOutlierShare * total_per_day / kMeanOutlierLength);

  heap_.reserve(cards_.size() + 64);
  for (uint32_t i = 0; i < cards_.size(); ++i) {
    Push(NextCardTime(cards_[i], options_.start_us), Kind::kCardNext, i);
  }
  if (fraud_gap_us_ > 0) {
    Push(NextInjection(options_.start_us, fraud_gap_us_), Kind::kFraudInjector, 0);
  }
  Push(NextInjection(options_.start_us, outlier_gap_us_), Kind::kOutlierInjector, 0);
}

size_t CardFraudGenerator::Impl::PickWeightedCity() {
  static constexpr int kTotal = [] {
    int t = 0;
    for (const City& c : kCities) t += c.weight;
    return t;
  }();
  int r = static_cast<int>(rng_.Below(kTotal));
  for (size_t i = 0; i < kCityCount; ++i) {
    r -= kCities[i].weight;
    if (r < 0) return i;
  }
  return kCityCount - 1;
}

size_t CardFraudGenerator::Impl::PickCategory() {
  static constexpr int kTotal = [] {
    int t = 0;
    for (const Category& c : kCategories) t += c.mix;
    return t;
  }();
  int r = static_cast<int>(rng_.Below(kTotal));
  size_t k = 0;
  while (r >= kCategories[k].mix) r -= kCategories[k++].mix;
  return k;
}

size_t CardFraudGenerator::Impl::PickFarCity(size_t from) {
  for (;;) {  // ends: most cities are more than kFarKm from any one
    const size_t c = static_cast<size_t>(rng_.Below(kCityCount));
    if (far_[from * kCityCount + c]) return c;
  }
}

void CardFraudGenerator::Impl::BuildMerchants(uint64_t count) {
  static constexpr int kTotalWeight = [] {
    int t = 0;
    for (const Category& c : kCategories) t += c.weight;
    return t;
  }();
  merchants_.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    Merchant m{};
    if (i < std::size(kAnchors)) {
      const Category& c = CategoryOf(kAnchors[i].mcc);
      m.category = static_cast<uint8_t>(&c - kCategories);
      m.online = kAnchors[i].online;
    } else {
      int r = static_cast<int>(rng_.Below(kTotalWeight));
      size_t k = 0;
      while (r >= kCategories[k].weight) r -= kCategories[k++].weight;
      m.category = static_cast<uint8_t>(k);
      m.online = rng_.Chance(kCategories[k].online_share);
    }
    m.city = static_cast<uint8_t>(PickWeightedCity());
    // Unless the population is tiny, every city gets at least one shop.
    constexpr uint64_t kSeedFirst = std::size(kAnchors);
    if (count >= kSeedFirst + 2 * kCityCount && i >= kSeedFirst && i < kSeedFirst + kCityCount) {
      m.city = static_cast<uint8_t>(i - kSeedFirst);
      if (kCategories[m.category].online_share >= 1.0) m.category = 0;  // a grocery instead
      m.online = false;
    }
    m.terminals =
        static_cast<uint8_t>(rng_.Between(1, kCategories[m.category].mcc == kMccAtm ? 2 : 4));
    m.lat_e4 = ToE4(kCities[m.city].lat) + static_cast<int32_t>(rng_.Between(-700, 700));
    m.lon_e4 = ToE4(kCities[m.city].lon) + static_cast<int32_t>(rng_.Between(-700, 700));
    merchants_.push_back(m);
  }
  for (uint32_t i = 0; i < merchants_.size(); ++i) {
    const Merchant& m = merchants_[i];
    const uint8_t flags = kCategories[m.category].flags;
    if (m.online) {
      online_.push_back(i);
      if (flags & kSmallOnline) online_small_.push_back(i);
      if (flags & kAtoTarget) online_ato_.push_back(i);
      if (flags & kBigTicket) online_big_.push_back(i);
    } else {
      physical_.push_back(i);
      if (flags & kHighRisk) physical_high_risk_.push_back(i);
    }
  }
  constexpr size_t kLocalBuckets = kCityCount * kCategoryCount;
  local_ = Group(kLocalBuckets, [](const Merchant& m) -> size_t {
    return m.online ? kLocalBuckets : m.city * kCategoryCount + m.category;
  });
  online_by_category_ = Group(kCategoryCount, [](const Merchant& m) -> size_t {
    return m.online ? m.category : kCategoryCount;
  });
  city_high_risk_ = Group(kCityCount, [](const Merchant& m) -> size_t {
    return !m.online && (kCategories[m.category].flags & kHighRisk) ? m.city : kCityCount;
  });
}

template <typename BucketOf>
CardFraudGenerator::Impl::Buckets CardFraudGenerator::Impl::Group(size_t count,
                                                                  BucketOf bucket_of) const {
  Buckets b;
  b.begin.assign(count + 1, 0);
  for (const Merchant& m : merchants_) {
    const size_t k = bucket_of(m);
    if (k < count) ++b.begin[k + 1];
  }
  for (size_t k = 0; k < count; ++k) b.begin[k + 1] += b.begin[k];
  b.items.resize(b.begin[count]);
  std::vector<uint32_t> fill(b.begin.begin(), b.begin.end() - 1);
  for (uint32_t i = 0; i < merchants_.size(); ++i) {
    const size_t k = bucket_of(merchants_[i]);
    if (k < count) b.items[fill[k]++] = i;
  }
  return b;
}

void CardFraudGenerator::Impl::BuildCards(uint64_t count) {
  cards_.reserve(count);
  // A bijection on 9-digit numbers keeps card numbers unique: 3^18 is coprime to 10^9.
  const uint64_t offset = rng_.Below(1'000'000'000);
  uint32_t accounts = 0;
  for (uint64_t i = 0; i < count; ++i) {
    Card c{};
    const char* bin = rng_.Chance(0.6) ? "400000" : "510000";
    std::memcpy(c.number, bin, 6);
    uint64_t body = (i * 387420489 + offset) % 1'000'000'000;
    for (int d = 14; d >= 6; --d) {
      c.number[d] = static_cast<char>('0' + body % 10);
      body /= 10;
    }
    int luhn = 0;  // check digit: double every second digit from the right of the payload
    for (int d = 14; d >= 0; --d) {
      int v = c.number[d] - '0';
      if ((14 - d) % 2 == 0) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
      luhn += v;
    }
    c.number[15] = static_cast<char>('0' + (10 - luhn % 10) % 10);

    c.account = (i > 0 && rng_.Chance(0.12)) ? cards_.back().account : ++accounts;
    c.home_city = static_cast<uint8_t>(PickWeightedCity());
    c.home_lat_e4 = ToE4(kCities[c.home_city].lat) + static_cast<int32_t>(rng_.Between(-900, 900));
    c.home_lon_e4 = ToE4(kCities[c.home_city].lon) + static_cast<int32_t>(rng_.Between(-900, 900));
    c.device_count = rng_.Chance(0.4) ? 2 : 1;
    c.devices[0] = rng_.Bits();
    c.devices[1] = rng_.Bits();
    c.scale = std::clamp(rng_.LogNormal(1.0, 0.45), 0.25, 5.0);
    const double per_day = std::clamp(rng_.LogNormal(2.2, 0.5), 0.3, 12.0);
    c.mean_gap_us = static_cast<double>(kDayUs) / (per_day * max_intensity_);

    c.salt = rng_.Bits();
    cards_.push_back(c);
  }
}

void CardFraudGenerator::Impl::Push(int64_t ts_us, Kind kind, uint32_t index) {
  heap_.push_back(Slot{ts_us, seq_++, index, kind});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
}

double CardFraudGenerator::Impl::Intensity(int64_t ts_us, int utc_offset_min) const {
  const int64_t local = ts_us + utc_offset_min * kMinuteUs;
  const int64_t day = FloorDiv(local, kDayUs);
  const int hour = static_cast<int>((local - day * kDayUs) / kHourUs);
  const int64_t weekday = ((day + 4) % 7 + 7) % 7;  // 1970-01-01 was a Thursday; 0 = Sunday
  const bool weekend = weekday == 0 || weekday == 6;
  return (weekend ? kWeekendIntensity[hour] : kWeekdayIntensity[hour]) * intensity_norm_;
}

// Candidates arrive at the card's peak rate; each is kept with probability intensity / peak
// (thinning), which gives a Poisson process following the local daily rhythm.
int64_t CardFraudGenerator::Impl::NextCardTime(const Card& card, int64_t from_us) {
  const int offset = kCities[card.home_city].utc_offset_min;
  int64_t t = from_us;
  for (;;) {
    const double gap_ms = rng_.Exponential() * card.mean_gap_us / kMsUs;
    t += std::llround(gap_ms) * kMsUs;
    if (rng_.Uniform() * max_intensity_ < Intensity(t, offset)) return t;
  }
}

int64_t CardFraudGenerator::Impl::NextInjection(int64_t from_us, double mean_gap_us) {
  const double gap_ms = rng_.Exponential() * mean_gap_us / kMsUs;
  return from_us + std::llround(gap_ms) * kMsUs;
}

// Keeps a pattern's transaction in the pool until its time comes.
void CardFraudGenerator::Impl::Schedule(const Txn& txn) {
  uint32_t slot = 0;
  if (free_.empty()) {
    slot = static_cast<uint32_t>(pool_.size());
    pool_.push_back(txn);
  } else {
    slot = free_.back();
    free_.pop_back();
    pool_[slot] = txn;
  }
  Push(txn.ts_us, Kind::kPending, slot);
}

int64_t CardFraudGenerator::Impl::DrawCents(const Category& category, double scale) {
  const double usd = rng_.LogNormal(category.median_usd * scale, category.sigma);
  int64_t cents = std::clamp<int64_t>(std::llround(usd * 100), 50, 2'000'000);
  if (category.mcc == kMccAtm) {  // cash in $20 notes
    cents = std::clamp<int64_t>((cents + 1000) / 2000 * 2000, 2000, 100'000);
  }
  return cents;
}

// The card's usual purchase times a factor drawn from [lo, hi).
int64_t CardFraudGenerator::Impl::TypicalCents(const Card& card, double lo, double hi) {
  const double usd = kTypicalUsd * card.scale * rng_.Uniform(lo, hi);
  return std::llround(usd * 100);
}

CardFraudGenerator::Impl::Txn CardFraudGenerator::Impl::PhysicalTxn(uint32_t card,
                                                                    uint32_t merchant,
                                                                    int64_t ts_us, int64_t cents,
                                                                    Pattern pattern) {
  const Merchant& m = merchants_[merchant];
  Txn t{};
  t.ts_us = ts_us;
  t.amount_cents = cents;
  t.card = card;
  t.merchant = merchant;
  t.lat_e4 = m.lat_e4;
  t.lon_e4 = m.lon_e4;
  t.city = m.city;
  t.terminal = static_cast<uint8_t>(rng_.Between(1, m.terminals));
  const uint16_t mcc = kCategories[m.category].mcc;
  if (mcc == kMccAtm) {
    t.channel = Channel::kAtm;
  } else if (mcc == kMccTransit) {
    t.channel = Channel::kContactless;
  } else {
    t.channel = rng_.Chance(cents < 10'000 ? 0.6 : 0.1) ? Channel::kContactless : Channel::kPos;
  }
  t.pattern = pattern;
  return t;
}

CardFraudGenerator::Impl::Txn CardFraudGenerator::Impl::OnlineTxn(uint32_t card, uint32_t merchant,
                                                                  int64_t ts_us, int64_t cents,
                                                                  uint64_t device, size_t city,
                                                                  int32_t lat_e4, int32_t lon_e4,
                                                                  Pattern pattern) {
  Txn t{};
  t.ts_us = ts_us;
  t.amount_cents = cents;
  t.device = device;
  t.card = card;
  t.merchant = merchant;
  t.lat_e4 = lat_e4;
  t.lon_e4 = lon_e4;
  t.city = static_cast<uint8_t>(city);
  t.channel = Channel::kEcom;
  t.pattern = pattern;
  return t;
}

CardFraudGenerator::Impl::Txn CardFraudGenerator::Impl::NormalTxn(uint32_t card_index,
                                                                  int64_t ts_us) {
  Card& card = cards_[card_index];
  const Buckets* list = nullptr;
  size_t bucket = 0;
  size_t category = PickCategory();
  if (rng_.Chance(kCategories[category].online_share) && online_by_category_.Size(category) > 0) {
    list = &online_by_category_;
    bucket = category;
  } else {
    // In store at home. Small populations lack some kinds of shop: draw the category again
    // (still by the spending mix), then buy online.
    for (int attempt = 0; attempt < 8 && list == nullptr; ++attempt) {
      if (attempt > 0) category = PickCategory();
      if (local_.Size(card.home_city * kCategoryCount + category) > 0) {
        list = &local_;
        bucket = card.home_city * kCategoryCount + category;
      }
    }
    if (list == nullptr && online_by_category_.Size(category) > 0) {
      list = &online_by_category_;
      bucket = category;
    }
  }
  uint32_t m = 0;
  if (list == nullptr) {
    m = PickFrom(online_);
  } else {
    // Mostly one of the card's two favourites in the category, sometimes any merchant.
    const size_t n = list->Size(bucket);
    const uint64_t key = 2 * (bucket + (list == &local_ ? 0 : (uint64_t{1} << 32)));
    const double r = rng_.Uniform();
    const uint64_t pick = r < 0.5   ? Mix64(card.salt + Mix64(key)) % n
                          : r < 0.8 ? Mix64(card.salt + Mix64(key + 1)) % n
                                    : rng_.Below(n);
    m = list->At(bucket, pick);
  }
  const Merchant& merchant = merchants_[m];
  const int64_t cents = DrawCents(kCategories[merchant.category], card.scale);
  if (!merchant.online) return PhysicalTxn(card_index, m, ts_us, cents, Pattern::kNormal);
  // Now and then a customer replaces a phone or laptop: new devices are not only fraud.
  const size_t slot = rng_.Below(card.device_count);
  if (rng_.Chance(0.003)) card.devices[slot] = rng_.Bits();
  return OnlineTxn(card_index, m, ts_us, cents, card.devices[slot], card.home_city,
                   card.home_lat_e4, card.home_lon_e4, Pattern::kNormal);
}

uint32_t CardFraudGenerator::Impl::PickVictim() {
  for (int attempt = 0; attempt < 16; ++attempt) {
    const uint32_t c = static_cast<uint32_t>(rng_.Below(cards_.size()));
    if (!cards_[c].compromised) return c;
  }
  return UINT32_MAX;
}

void CardFraudGenerator::Impl::InjectFraud(int64_t ts_us) {
  const double r = rng_.Uniform();
  const uint32_t card = PickVictim();
  if (card == UINT32_MAX) return;  // nearly every card was already a victim
  cards_[card].compromised = true;
  if (r < kCardTestingShare) {
    CardTesting(card, ts_us);
  } else if (r < kCardTestingShare + kTakeoverShare) {
    AccountTakeover(card, ts_us);
  } else {
    SpendingSpree(card, ts_us);
  }
}

// A bot checks that a stolen number works: tiny online amounts seconds apart, from one
// device somewhere in the world; if it does, one larger purchase follows within minutes.
void CardFraudGenerator::Impl::CardTesting(uint32_t card, int64_t ts_us) {
  const size_t city = rng_.Below(kCityCount);
  const int32_t lat = ToE4(kCities[city].lat) + static_cast<int32_t>(rng_.Between(-300, 300));
  const int32_t lon = ToE4(kCities[city].lon) + static_cast<int32_t>(rng_.Between(-300, 300));
  const uint64_t device = rng_.Bits();
  uint32_t targets[3];
  const size_t target_count = static_cast<size_t>(rng_.Between(1, 3));
  for (size_t i = 0; i < target_count; ++i) targets[i] = PickFrom(online_small_);
  const int64_t count = rng_.Between(5, 20);
  int64_t t = ts_us;
  for (int64_t i = 0; i < count; ++i) {
    if (i > 0) t += rng_.Between(2'000, 25'000) * kMsUs;
    const uint32_t m = targets[rng_.Below(target_count)];
    Schedule(OnlineTxn(card, m, t, rng_.Between(50, 300), device, city, lat, lon,
                       Pattern::kCardTesting));
  }
  if (rng_.Chance(0.4)) {
    t += rng_.Between(60, 600) * kSecondUs;
    const uint32_t m = PickFrom(online_big_);
    const int64_t cents = rng_.Between(10'000, 80'000);
    Schedule(OnlineTxn(card, m, t, cents, device, city, lat, lon, Pattern::kCardTesting));
  }
}

// Someone logs into the cardholder's account from a new device far from home and buys
// resellable goods for several times the usual amount, up to four times within an hour.
void CardFraudGenerator::Impl::AccountTakeover(uint32_t card, int64_t ts_us) {
  const Card& c = cards_[card];
  const size_t city = PickFarCity(c.home_city);
  const int32_t lat = ToE4(kCities[city].lat) + static_cast<int32_t>(rng_.Between(-300, 300));
  const int32_t lon = ToE4(kCities[city].lon) + static_cast<int32_t>(rng_.Between(-300, 300));
  const uint64_t device = rng_.Bits();
  const double r = rng_.Uniform();
  const int count = r < 0.25 ? 1 : r < 0.55 ? 2 : r < 0.8 ? 3 : 4;
  int64_t t = ts_us;
  for (int i = 0; i < count; ++i) {
    if (i > 0) t += rng_.Between(3 * 60, 18 * 60) * kSecondUs;
    const uint32_t m = PickFrom(online_ato_);
    const int64_t cents = TypicalCents(c, 4, 12);
    Schedule(OnlineTxn(card, m, t, cents, device, city, lat, lon, Pattern::kAccountTakeover));
  }
}

// A stolen physical card is emptied in one to three hours: electronics, jewelry, gift cards
// and ATM cash, well above the holder's usual amounts, at home or in a far city.
void CardFraudGenerator::Impl::SpendingSpree(uint32_t card, int64_t ts_us) {
  const Card& c = cards_[card];
  size_t city = c.home_city;
  if (city_high_risk_.Size(city) == 0 || rng_.Chance(0.5)) {
    city = merchants_[PickFrom(physical_high_risk_)].city;
    for (int attempt = 0; attempt < 32 && !far_[c.home_city * kCityCount + city]; ++attempt) {
      city = merchants_[PickFrom(physical_high_risk_)].city;
    }
  }
  const int64_t count = rng_.Between(5, 15);
  const double span_us = rng_.Uniform(1.0, 2.0) * kHourUs;
  const double mean_gap_us = span_us / static_cast<double>(count - 1);
  int64_t t = ts_us;
  for (int64_t i = 0; i < count; ++i) {
    if (i > 0) t += std::llround(mean_gap_us * rng_.Uniform(0.5, 1.5) / kMsUs) * kMsUs;
    const uint32_t m = city_high_risk_.At(city, rng_.Below(city_high_risk_.Size(city)));
    const Category& category = kCategories[merchants_[m].category];
    const int64_t floor = TypicalCents(c, 4, 8);
    int64_t cents = std::max(floor, DrawCents(category, c.scale * 1.5));
    if (category.mcc == kMccAtm) cents = std::min<int64_t>((cents + 1999) / 2000 * 2000, 100'000);
    Schedule(PhysicalTxn(card, m, t, cents, Pattern::kSpendingSpree));
  }
}

void CardFraudGenerator::Impl::InjectOutlier(int64_t ts_us) {
  const uint32_t card = static_cast<uint32_t>(rng_.Below(cards_.size()));
  if (cards_[card].away_until_us > ts_us) return;  // already travelling
  if (!rng_.Chance(kTripShare) || !Trip(card, ts_us)) BigPurchase(card, ts_us);
}

// A legitimate, rare, big purchase at home: furniture, travel, electronics, jewelry.
void CardFraudGenerator::Impl::BigPurchase(uint32_t card, int64_t ts_us) {
  Card& c = cards_[card];
  uint32_t m = UINT32_MAX;
  const bool in_store = rng_.Chance(0.6);
  for (int attempt = 0; in_store && attempt < 8 && m == UINT32_MAX; ++attempt) {
    const size_t category = rng_.Below(kCategoryCount);
    const size_t local = c.home_city * kCategoryCount + category;
    if ((kCategories[category].flags & kBigTicket) && local_.Size(local) > 0) {
      m = local_.At(local, rng_.Below(local_.Size(local)));
    }
  }
  if (m == UINT32_MAX) m = PickFrom(online_big_);
  const Merchant& merchant = merchants_[m];
  const int64_t drawn = DrawCents(kCategories[merchant.category], c.scale);
  const int64_t cents = std::max(drawn, TypicalCents(c, 6, 20));
  if (merchant.online) {
    const uint64_t device = c.devices[rng_.Below(c.device_count)];
    Schedule(OnlineTxn(card, m, ts_us, cents, device, c.home_city, c.home_lat_e4, c.home_lon_e4,
                       Pattern::kLegitOutlier));
  } else {
    Schedule(PhysicalTxn(card, m, ts_us, cents, Pattern::kLegitOutlier));
  }
}

// A legitimate trip to a far city for one to four days: ordinary purchases there, some on
// the holder's own phone. Home traffic pauses meanwhile, so travel looks physically possible.
bool CardFraudGenerator::Impl::Trip(uint32_t card, int64_t ts_us) {
  Card& c = cards_[card];
  size_t city = kCityCount;
  for (int attempt = 0; attempt < 32 && city == kCityCount; ++attempt) {
    const size_t candidate = merchants_[PickFrom(physical_)].city;
    if (far_[c.home_city * kCityCount + candidate]) city = candidate;
  }
  if (city == kCityCount) return false;
  const int32_t lat = ToE4(kCities[city].lat) + static_cast<int32_t>(rng_.Between(-500, 500));
  const int32_t lon = ToE4(kCities[city].lon) + static_cast<int32_t>(rng_.Between(-500, 500));
  const int64_t count = rng_.Between(3, 10);
  const double mean_gap_us = rng_.Uniform(1.0, 4.0) * kDayUs / static_cast<double>(count);
  int64_t t = ts_us;
  for (int64_t i = 0; i < count; ++i) {
    if (i > 0) t += std::llround(mean_gap_us * rng_.Uniform(0.5, 1.5) / kMsUs) * kMsUs;
    if (rng_.Chance(0.2)) {
      const uint32_t m = PickFrom(online_);
      const int64_t cents = DrawCents(kCategories[merchants_[m].category], c.scale);
      Schedule(OnlineTxn(card, m, t, cents, c.devices[rng_.Below(c.device_count)], city, lat, lon,
                         Pattern::kLegitOutlier));
    } else {
      const uint32_t m = RandomCityMerchant(city);
      const int64_t cents = DrawCents(kCategories[merchants_[m].category], c.scale);
      Schedule(PhysicalTxn(card, m, t, cents, Pattern::kLegitOutlier));
    }
  }
  c.away_until_us = t + kHourUs;
  return true;
}

// clear() + append rather than assign(): GCC 12 at -O3 warns falsely (-Wrestrict) on the
// latter, and the strings keep their capacity either way.
void CardFraudGenerator::Impl::Format(const Txn& txn, CardTxn& out) {
  const Card& card = cards_[txn.card];
  const Merchant& merchant = merchants_[txn.merchant];
  out.event_id.clear();
  out.event_id += "tx-";
  AppendZeroPadded(out.event_id, stats_.events + 1, 12);
  out.ts_us = txn.ts_us;
  out.card_id.clear();
  out.card_id.append(card.number, sizeof card.number);
  out.account_id.clear();
  out.account_id += "AC";
  AppendZeroPadded(out.account_id, card.account, 8);
  out.merchant_id.clear();
  out.merchant_id += "M";
  AppendZeroPadded(out.merchant_id, txn.merchant + 1, 6);
  out.mcc = kCategories[merchant.category].mcc;
  out.amount_cents = txn.amount_cents;
  out.currency = "USD";
  out.country = kCities[txn.city].country;
  out.lat_e4 = txn.lat_e4;
  out.lon_e4 = txn.lon_e4;
  if (txn.terminal != 0) {
    out.device_id.clear();
    out.device_id += "T";
    AppendZeroPadded(out.device_id, txn.merchant + 1, 6);
    out.device_id += '-';
    AppendUint(out.device_id, txn.terminal);
  } else {
    out.device_id.clear();
    out.device_id += "D";
    AppendHex16(out.device_id, txn.device);
  }
  out.channel = txn.channel;
  out.pattern = txn.pattern;
  out.is_fraud = IsFraud(txn.pattern);
}

bool CardFraudGenerator::Impl::Next(CardTxn& out) {
  while (stats_.events < options_.events) {
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    const Slot slot = heap_.back();
    heap_.pop_back();
    Txn txn;
    switch (slot.kind) {
      case Kind::kCardNext: {
        const Card& card = cards_[slot.index];
        if (card.away_until_us > slot.ts_us) {
          Push(NextCardTime(card, card.away_until_us), Kind::kCardNext, slot.index);
          continue;
        }
        txn = NormalTxn(slot.index, slot.ts_us);
        Push(NextCardTime(card, slot.ts_us), Kind::kCardNext, slot.index);
        break;
      }
      case Kind::kFraudInjector:
        InjectFraud(slot.ts_us);
        Push(NextInjection(slot.ts_us, fraud_gap_us_), Kind::kFraudInjector, 0);
        continue;
      case Kind::kOutlierInjector:
        InjectOutlier(slot.ts_us);
        Push(NextInjection(slot.ts_us, outlier_gap_us_), Kind::kOutlierInjector, 0);
        continue;
      case Kind::kPending:
        txn = pool_[slot.index];
        free_.push_back(slot.index);
        break;
    }
    Format(txn, out);
    if (stats_.events == 0) stats_.first_ts_us = txn.ts_us;
    stats_.last_ts_us = txn.ts_us;
    ++stats_.events;
    ++stats_.by_pattern[static_cast<size_t>(txn.pattern)];
    if (out.is_fraud) ++stats_.fraud;
    return true;
  }
  return false;
}

CardFraudGenerator::CardFraudGenerator(const GeneratorOptions& options)
    : impl_(std::make_unique<Impl>(options)) {}
CardFraudGenerator::~CardFraudGenerator() = default;
bool CardFraudGenerator::Next(CardTxn& out) { return impl_->Next(out); }
const GeneratorStats& CardFraudGenerator::Stats() const { return impl_->stats_; }
uint64_t CardFraudGenerator::CardCount() const { return impl_->cards_.size(); }
uint64_t CardFraudGenerator::MerchantCount() const { return impl_->merchants_.size(); }

// ---------------------------------------------------------------------------------------
// Text output.
// ---------------------------------------------------------------------------------------

std::optional<TextFormat> ParseTextFormat(std::string_view name) {
  if (name == "jsonl" || name == "json") return TextFormat::kJsonl;
  if (name == "csv") return TextFormat::kCsv;
  return std::nullopt;
}

void AppendCsvField(std::string_view s, std::string& out) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(s);
    return;
  }
  out += '"';
  for (char ch : s) {
    if (ch == '"') out += '"';
    out += ch;
  }
  out += '"';
}

std::string_view CsvHeader() {
  return "event_id,ts,card_id,account_id,merchant_id,mcc,amount,currency,country,lat,lon,"
         "device_id,channel,is_fraud,pattern\n";
}

void AppendJsonLine(const CardTxn& txn, std::string& out) {
  out += "{\"event_id\":";
  AppendJsonString(out, txn.event_id);
  out += ",\"ts\":\"";
  AppendIsoMillis(out, txn.ts_us);
  out += "\",\"card_id\":";
  AppendJsonString(out, txn.card_id);
  out += ",\"account_id\":";
  AppendJsonString(out, txn.account_id);
  out += ",\"merchant_id\":";
  AppendJsonString(out, txn.merchant_id);
  out += ",\"mcc\":\"";
  AppendZeroPadded(out, txn.mcc, 4);
  out += "\",\"amount\":";
  AppendFixed(out, txn.amount_cents, 2);
  out += ",\"currency\":";
  AppendJsonString(out, txn.currency);
  out += ",\"country\":";
  AppendJsonString(out, txn.country);
  out += ",\"lat\":";
  AppendFixed(out, txn.lat_e4, 4);
  out += ",\"lon\":";
  AppendFixed(out, txn.lon_e4, 4);
  out += ",\"device_id\":";
  AppendJsonString(out, txn.device_id);
  out += ",\"channel\":\"";
  out += ChannelName(txn.channel);
  out += "\",\"is_fraud\":";
  out += txn.is_fraud ? "true" : "false";
  out += ",\"pattern\":\"";
  out += PatternName(txn.pattern);
  out += "\"}\n";
}

void AppendCsvRow(const CardTxn& txn, std::string& out) {
  AppendCsvField(txn.event_id, out);
  out += ',';
  AppendIsoMillis(out, txn.ts_us);
  out += ',';
  AppendCsvField(txn.card_id, out);
  out += ',';
  AppendCsvField(txn.account_id, out);
  out += ',';
  AppendCsvField(txn.merchant_id, out);
  out += ',';
  AppendZeroPadded(out, txn.mcc, 4);
  out += ',';
  AppendFixed(out, txn.amount_cents, 2);
  out += ',';
  AppendCsvField(txn.currency, out);
  out += ',';
  AppendCsvField(txn.country, out);
  out += ',';
  AppendFixed(out, txn.lat_e4, 4);
  out += ',';
  AppendFixed(out, txn.lon_e4, 4);
  out += ',';
  AppendCsvField(txn.device_id, out);
  out += ',';
  out += ChannelName(txn.channel);
  out += ',';
  out += txn.is_fraud ? "true" : "false";
  out += ',';
  out += PatternName(txn.pattern);
  out += '\n';
}

GeneratorStats WriteGenerated(const GeneratorOptions& options, TextFormat format,
                              const std::string& path) {
  CardFraudGenerator generator(options);  // validate before touching the file
  const bool to_stdout = path == "-";
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Closer> owned;
  std::FILE* file = stdout;
  if (!to_stdout) {
    owned.reset(std::fopen(path.c_str(), "wb"));
    if (!owned) {
      throw std::runtime_error(
          fmt::format("cannot open '{}' for writing: {}", path, std::strerror(errno)));
    }
    file = owned.get();
  }
  const auto fail = [&] {
    throw std::runtime_error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  };
  constexpr size_t kChunk = 1 << 20;
  std::string buffer;
  buffer.reserve(kChunk + 4096);
  if (format == TextFormat::kCsv) buffer.append(CsvHeader());
  CardTxn txn;
  while (generator.Next(txn)) {
    if (format == TextFormat::kCsv) {
      AppendCsvRow(txn, buffer);
    } else {
      AppendJsonLine(txn, buffer);
    }
    if (buffer.size() >= kChunk) {
      if (std::fwrite(buffer.data(), 1, buffer.size(), file) != buffer.size()) fail();
      buffer.clear();
    }
  }
  if (std::fwrite(buffer.data(), 1, buffer.size(), file) != buffer.size()) fail();
  if (std::fflush(file) != 0) fail();
  if (owned && std::fclose(owned.release()) != 0) fail();
  return generator.Stats();
}

namespace {

// The generator as a RecordSource: each Next() formats a batch into one buffer, followed by
// kRecordPadding zero bytes, and hands out views into it. The buffer is only rewritten by
// the next call.
class GeneratorSource final : public RecordSource {
 public:
  explicit GeneratorSource(const GeneratorOptions& options)
      : generator_(options), name_("generator:" + options.scenario) {}

  bool Next(std::vector<Record>& out, size_t max) override {
    out.clear();
    buffer_.clear();
    for (size_t i = 0; i < max && generator_.Next(txn_); ++i) {
      const size_t start = buffer_.size();
      AppendJsonLine(txn_, buffer_);
      Record r;
      r.offset = position_ + start;
      r.line = lines_ + i + 1;
      out.push_back(r);  // `text` is set once the buffer has stopped growing
    }
    const size_t size = buffer_.size();
    buffer_.append(kRecordPadding, '\0');
    for (size_t i = 0; i < out.size(); ++i) {
      const size_t start = out[i].offset - position_;
      const size_t end = i + 1 < out.size() ? out[i + 1].offset - position_ : size;
      out[i].text = std::string_view(buffer_.data() + start, end - start - 1);  // no '\n'
    }
    position_ += size;
    lines_ += out.size();
    return !out.empty();
  }

  uint64_t Position() const override { return position_; }
  uint64_t LinesRead() const override { return lines_; }
  const std::string& Name() const override { return name_; }

 private:
  CardFraudGenerator generator_;
  std::string name_;
  CardTxn txn_;
  std::string buffer_;
  uint64_t position_ = 0;
  uint64_t lines_ = 0;
};

}  // namespace

std::unique_ptr<RecordSource> OpenGenerator(const GeneratorOptions& options) {
  return std::make_unique<GeneratorSource>(options);
}

}  // namespace vigil::source
