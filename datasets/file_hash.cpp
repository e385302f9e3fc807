#include <fstream>
#include <memory>
#include <vector>

#include <openssl/evp.h>

#include "keras/errors.hpp"
#include "keras/utils/data_utils.hpp"

namespace keras::utils {

std::string hash_file(const std::filesystem::path& path, const std::string& algorithm) {
    const EVP_MD* md = nullptr;
    if (algorithm == "sha256") md = EVP_sha256();
    else if (algorithm == "md5") md = EVP_md5();
    else value_error("hash_file: unknown hash algorithm \"{}\" (expected \"sha256\" or \"md5\")", algorithm);

    std::ifstream in(path, std::ios::binary);
    if (!in) runtime_error("hash_file: cannot open {}", path.string());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) runtime_error("hash_file: OpenSSL cannot start {}", algorithm);
    std::vector<char> buffer(1 << 16);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(in.gcount()));
    }
    if (in.bad()) runtime_error("hash_file: error while reading {}", path.string());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(ctx.get(), digest, &size);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < size; ++i) {
        hex += kHex[digest[i] >> 4];
        hex += kHex[digest[i] & 15];
    }
    return hex;
}

}  // namespace keras::utils
