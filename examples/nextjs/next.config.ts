import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  // The guestbook page is rendered once and kept: formq's revalidation
  // events (app/api/revalidate) are what make it render again.
  poweredByHeader: false,
};

export default nextConfig;
